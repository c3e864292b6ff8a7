"""``i2i bench``: training-step and inference speed, i2i's fast paths beside the reference implementation.

- :func:`~i2i.bench.train.bench_train`: steps/s of a method's training step (``fast`` and ``reference``);
- :func:`~i2i.bench.infer.bench_infer`: translator / upscaler throughput;
- :mod:`~i2i.bench.reference`: the reference implementation's step, re-created on i2i's nets;
- :mod:`~i2i.bench.flops`: FLOP counts and model FLOP utilisation; :mod:`~i2i.bench.report`: output.
"""
