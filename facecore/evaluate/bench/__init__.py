"""``python -m facecore bench``: how fast the models train and predict here, and what the data costs.

For each model, on the current device:

* **compute**: training steps (forward + backward + Adam, batch B) on in-memory random tensors
  after a warm-up, and inference at batch 1 and 32: what the hardware allows;
* **pipeline**: epochs of a real :class:`~facecore.train.loop.Trainer` (its ``_build``, loaders,
  transforms, optimizer and :func:`~facecore.train.epoch.train_one_epoch`) over a real face dataset
  built from LFW in a temporary ``FACECORE_HOME``, with the model's default config; the
  ratio pipeline / compute says what the data pipeline costs (>= 0.8: under 20%);
* for ``resnet50_pretrained``: epochs with cached trunk features vs the frozen trunk recomputed
  every step vs full training, the one-off caching time, and the rate amortised over 5 epochs.

ImageNet weights are never needed: the pretrained model is measured with a random-init trunk
(the speed is the same). Rates are medians over steps or epochs, in images per second; nothing
here is asserted, the figures are printed (Markdown) or returned (``--json``).

The modules: :mod:`~.plan` (what to measure, the targets), :mod:`~.compute` (compute-bound
rates), :mod:`~.pipeline` (real Trainer epochs, cached features, DDP processes), :mod:`~.measure`
(one model's figures, in a fresh process), :mod:`~.environment` (the machine),
:mod:`~.run` (:func:`~.run.run_bench`, the result) and :mod:`~.report` (Markdown). The command line
is :mod:`facecore.cli.bench`.
"""
