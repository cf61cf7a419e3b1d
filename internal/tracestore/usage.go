package tracestore

import "fmt"

// TableUsage is the space one table of the key layout (codec.go) takes in
// the store's live sstables.
type TableUsage struct {
	// Prefix is the table's key prefix, e.g. 'd'.
	Prefix byte
	// Name says what the table holds.
	Name string
	// Bytes is Pebble's estimate of the sstable bytes holding the table's
	// keys: exact for whole files, from the index blocks for files that
	// also hold other tables. Data still in the memtable is not counted.
	Bytes uint64
}

// tables lists every table of the key layout, in the order codec.go
// describes them.
var tables = []struct {
	prefix byte
	name   string
}{
	{pData, "OTLP protobuf records"},
	{pPage, "OTLP protobuf pages"},
	{pIndex, "search records"},
	{pSummary, "trace summaries"},
	{pBlock, "block summaries"},
	{pColumns, "column blocks"},
	{pAttrCol, "attribute columns"},
	{pTagKey, "tag names"},
	{pTagVal, "tag values"},
	{pMeta, "store state"},
}

// TableUsage returns the live sstable bytes of each table, for finding
// where the store's disk space goes (bench/traces prints it). It asks
// Pebble for an estimate per key range and reads no data.
func (s *Store) TableUsage() ([]TableUsage, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	out := make([]TableUsage, 0, len(tables))
	for _, t := range tables {
		n, err := s.db.EstimateDiskUsage([]byte{t.prefix}, []byte{t.prefix + 1})
		if err != nil {
			return nil, fmt.Errorf("estimate disk usage of table %c: %w", t.prefix, err)
		}
		out = append(out, TableUsage{Prefix: t.prefix, Name: t.name, Bytes: n})
	}
	return out, nil
}
