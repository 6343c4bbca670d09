"""A linear layer with relu, for ``lucid-ir dump`` (see the README):

    lucid-ir dump examples/linear_layer.py:layer --shape 64x784 --stage fused
    lucid-ir dump examples/linear_layer.py --stage all      # runs the script below
"""
import lucid
import lucid.nn.functional as F

lucid.random.seed(0)
weight = lucid.randn(256, 784, requires_grad=True)
bias = lucid.randn(256, requires_grad=True)


def layer(x):
    return F.relu(F.linear(x, weight, bias))


if __name__ == "__main__":
    step = lucid.compile(lambda x: layer(x).sum())
    step(lucid.randn(64, 784)).backward()
    print("weight.grad norm:", float((weight.grad ** 2).sum() ** 0.5))
