"""The network (paper Fig. 1): sinc filterbank, ResNet34, pooling, heads, the encoder, and
checkpoints that rebuild it alone.
"""
