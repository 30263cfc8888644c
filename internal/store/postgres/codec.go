package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
)

// The stored forms of values are the core's (sqlcore: times as BIGINT unix
// nanoseconds, JSON and free text as escaped TEXT); the multi-row
// statements of this backend bind them as arrays, whose NULL elements are
// nil *string.

// textElem returns v, nil or a string from the core's encoders, as an
// element of a text[] argument.
func textElem(v any) *string {
	switch s := v.(type) {
	case string:
		return &s // allocated only in this case
	}
	return nil
}

// encJSON encodes a JSON value as an element of a text[] argument, as
// sqlcore.EncJSON does (without boxing it: BatchWrite's hot path).
func encJSON(m json.RawMessage) *string {
	if m == nil {
		return nil
	}
	s := store.EncodeText(string(m))
	return &s
}

// encResult encodes a result as an element of a text[] argument: NULL when
// the result is in the blob store (ref set).
func encResult(m json.RawMessage, ref string) *string { return encJSON(store.InlineResult(m, ref)) }

// encError encodes an ErrorInfo as JSON TEXT, NULL for nil.
func encError(e *store.ErrorInfo) (*string, error) {
	v, err := sqlcore.EncError(e)
	return textElem(v), err
}

// encHistory encodes a task run's transitions as a JSON array, NULL when
// there are none.
func encHistory(h []store.Transition) (*string, error) {
	b, err := sqlcore.MarshalHistory(h)
	if b == nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// historyAppend returns an SQL expression of the history column col with the
// transitions of the JSON array parameter param (text) appended. Histories
// are json.Marshal output ("[...]" without spaces around), so appending is a
// splice of the two arrays' texts.
func historyAppend(col, param string) string {
	return fmt.Sprintf(`CASE WHEN %[2]s IS NULL OR %[2]s = '[]' THEN %[1]s
		WHEN %[1]s IS NULL OR %[1]s = '' OR %[1]s = '[]' THEN %[2]s
		ELSE left(%[1]s, -1) || ',' || substr(%[2]s, 2) END`, col, param)
}

// The core's names that the claims use.
var (
	encTime   = sqlcore.EncTime
	nowIfZero = sqlcore.NowIfZero
)

const (
	runSelectCols     = sqlcore.RunCols
	taskRunSelectCols = sqlcore.TaskRunCols
	// sqlLeasedRunStates is the literal condition of the leased states,
	// which the partial indexes repeat (so that the planner uses them also
	// in generic plans).
	sqlLeasedRunStates = sqlcore.LeasedRunStates
)

// collectRuns reads the rows of a query of runSelectCols.
func collectRuns(rows pgx.Rows, err error) ([]store.Run, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlcore.CollectRuns(rows)
}

// collectTaskRuns reads the rows of a query of taskRunSelectCols.
func collectTaskRuns(rows pgx.Rows, err error) ([]store.TaskRun, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlcore.CollectTaskRuns(rows)
}
