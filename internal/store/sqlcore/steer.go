package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/batonhq/baton/internal/store"
)

// Steering (migration 0008): a pause request is a JSON object in
// runs.pause_request until the engine makes the pause (WaitBegin with
// ConsumePause clears it); a parameter update rewrites runs.parameters.
// Both lock the run's row and append their history entry in the same
// transaction.

// RunPause records a request to pause run p.ID at its next step boundary;
// see store.RunPauseParams.
func (c *Core) RunPause(ctx context.Context, p store.RunPauseParams) (store.Run, error) {
	at := NowIfZero(p.At)
	who := p.Actor.OrSystem()
	var out store.Run
	err := c.d.WriteTx(ctx, "pause run "+p.ID, func(tx Tx) error {
		r, err := ScanRun(tx.QueryRow(ctx, lockRunSQL+c.sx.ForUpdate, p.ID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.ID)
		}
		out = r
		if r.State.Final() || r.State == store.RunCancelling {
			return fmt.Errorf("run %s is %s: it cannot be paused: %w", r.ID, r.State, store.ErrConflict)
		}
		if r.State == store.RunPaused || r.PauseRequest != nil {
			return nil
		}
		req := store.PauseRequest{By: who, Reason: p.Reason, At: at.UTC()}
		raw, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := tx.Exec(ctx, "UPDATE runs SET pause_request = $2 WHERE id = $1", r.ID, string(raw)); err != nil {
			return err
		}
		out.PauseRequest = &req
		return appendHistory(ctx, tx, at, []store.HistoryEntry{{RunID: r.ID, At: at, Actor: who,
			Action: store.ActionPauseRequested, Reason: p.Reason,
			Payload: mustJSON(map[string]string{"reason": p.Reason, "state": string(r.State)})}})
	})
	return out, err
}

// RunUpdate changes the parameters of run p.ID; see store.RunUpdateParams.
func (c *Core) RunUpdate(ctx context.Context, p store.RunUpdateParams) (store.Run, error) {
	if len(p.Parameters) == 0 || !json.Valid(p.Parameters) {
		return store.Run{}, fmt.Errorf("update run %s: the parameters are not JSON", p.ID)
	}
	at := NowIfZero(p.At)
	who := p.Actor.OrSystem()
	var out store.Run
	err := c.d.WriteTx(ctx, "update run "+p.ID, func(tx Tx) error {
		r, err := ScanRun(tx.QueryRow(ctx, lockRunSQL+c.sx.ForUpdate, p.ID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.ID)
		}
		out = r
		if r.State.Final() || r.State == store.RunCancelling {
			return fmt.Errorf("run %s is %s: its settings can no longer change: %w", r.ID, r.State, store.ErrConflict)
		}
		old := r.Parameters
		if err := tx.Exec(ctx, "UPDATE runs SET parameters = $2, updated_at = $3 WHERE id = $1", r.ID,
			EncJSON(p.Parameters), EncTime(at)); err != nil {
			return err
		}
		out.Parameters, out.UpdatedAt = p.Parameters, at
		return appendHistory(ctx, tx, at, []store.HistoryEntry{store.EditEntry(r.ID, at, who, p.Reason, old, p.Parameters)})
	})
	return RoundRun(out), err
}
