# expect: resource_limit — returns a DataFrame whose CSV is over the result limit
import numpy
import pandas


def f(data):
    return pandas.DataFrame(numpy.random.default_rng(0).random((100000, 5)))
