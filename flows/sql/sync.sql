-- Register the hour partitions written since the last sync.
CALL {catalog}.system.sync_partition_metadata('{schema}', 'events', 'ADD');
CALL {catalog}.system.sync_partition_metadata('{schema}', 'sessions', 'ADD');
CALL {catalog}.system.sync_partition_metadata('{schema}', 'offers', 'ADD');
