//! Dataset formats -> tokenized, label-masked batches (issue 04).
