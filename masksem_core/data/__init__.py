"""Skeleton data: raw data sets -> community-format arrays (`prepare`), and arrays -> training clips.

Heavy modules are not imported here, so `masksem prepare` stays fast to start; import from the
sub-modules (`masksem_core.data.feeder`, `.augment`, `.prepare`, ...).
"""
