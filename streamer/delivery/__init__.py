"""A batch result becomes records with topic, key and partition (:mod:`.batch_records`) and is
delivered under either guarantee: :mod:`.at_least_once` (outputs, then state writes, through
:mod:`.bulk_sender`, its offsets committed by :mod:`.offset_commits`) or :mod:`.exactly_once` (one
transaction per readings partition, through :mod:`.transactional_sender`)."""
