"""The only package that touches faust-streaming's internals.

- :mod:`.version_check`: the exact faust version these patches were written for, and a check
  that the source of every patched function is still the one they were written against;
- :mod:`.consumer_fixes`: repairs of faust's offset bookkeeping and of its seeks;
- :mod:`.bulk_readings`: faust's fetch loop with the readings topic delivered to the batch
  processor in bulk, beside faust's per-message path, with faust's offsets, commits and
  rebalances kept; and changelog records applied to tables in bulk during recovery;
- :mod:`.bulk_records`: the readings topic's records made as the pipeline's messages inside
  aiokafka's fetcher (no ``ConsumerRecord`` of each);
- :mod:`.exactly_once_hooks`: read-committed consumption and recovery past transaction markers;
- :mod:`.table_access`: the stores behind faust tables, read and written without faust's
  per-key machinery;
- :mod:`.ownership`: the partitions a worker owns once a rebalance and its recovery are over,
  for timers that write table state;
- :mod:`.compression`: the zstd level of aiokafka's record batches, which it does not expose.
"""
