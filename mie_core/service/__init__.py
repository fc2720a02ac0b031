"""What the app and the commands serve: verifying and identifying clips, the user's instrument
library, the workbench's cache, background jobs.
"""
