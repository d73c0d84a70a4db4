"""Programs beside the training flow: the speed benchmark (``lightning_nas-bench``,
:mod:`~lightning_nas.tools.bench`) and the process's allocator setting (:mod:`~lightning_nas.tools.allocator`)."""
