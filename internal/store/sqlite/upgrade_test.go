package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// TestUpgradeFromVersion1: a store created by a binary that knew only
// migration 0001 opens, migrates to the current version, keeps its runs,
// records flow registrations, and an AWAITING_RETRY run its worker held
// before the upgrade is taken back when its lease expires.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "baton.db")
	ms, err := sqlcore.Migrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	lease := time.Now().Add(-time.Minute).UnixNano()
	for _, q := range []string{ms[0].SQL,
		`INSERT INTO baton_meta (key, value) VALUES ('app', 'baton'), ('schema_version', '1')`,
		`INSERT INTO runs (id, flow, state, attempt, queue, worker_id, lease_until, created_at, updated_at)
			VALUES ('r1', 'f', 'AWAITING_RETRY', 1, 'q', 'w1', ` + itoa(lease) + `, 1, 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open a version 1 store: %v", err)
	}
	defer s.Close()
	var ver string
	if err := s.read.QueryRowContext(ctx, "SELECT value FROM baton_meta WHERE key = 'schema_version'").Scan(&ver); err != nil ||
		ver != itoa(int64(SchemaVersion())) {
		t.Fatalf("schema_version after the upgrade = %q (%v), want %d", ver, err, SchemaVersion())
	}
	if err := s.FlowUpsert(ctx, store.FlowUpsertParams{Flows: []store.Flow{{Name: "f", RegisteredAt: time.Now()}}}); err != nil {
		t.Fatalf("FlowUpsert after the upgrade: %v", err)
	}
	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{MaxAttempts: 5})
	if err != nil || len(exp.Crashed) != 1 || exp.Rescheduled != 1 {
		t.Fatalf("LeasesExpire after the upgrade = %+v, %v; want r1 taken back and rescheduled", exp, err)
	}
	if r, err := s.RunGet(ctx, "r1"); err != nil || r.State != store.RunScheduled || r.Attempt != 2 {
		t.Errorf("r1 after its lease expired = %+v, %v; want SCHEDULED at attempt 2", r, err)
	}
}

func itoa(n int64) string { return fmt.Sprint(n) }
