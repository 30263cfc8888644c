package deploy_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// FuzzBuild: any declaration either builds (with a hash and a stable id
// per schedule) or is refused with a 400 naming what is wrong; nothing
// panics.
func FuzzBuild(f *testing.F) {
	f.Add("nightly", "train", "0 3 * * *", "", "", "Europe/Berlin", "skip", "1h", "30s", "", 0)
	f.Add("x", "f", "", "15m", "", "", "buffer_all", "all", "", "queue", 2)
	f.Add("x", "f", "", "", "FREQ=DAILY;BYHOUR=2", "America/New_York", "allow_all", "0", "0", "skip", -1)
	f.Add("", "", "61 * * * *", "-1s", "FREQ=NOPE", "Mars/Olympus", "never", "soon", "-3s", "later", 0)
	f.Fuzz(func(t *testing.T, name, flow, cron, interval, rrule, tz, overlap, catchup, jitter, collision string, maxActive int) {
		req := apitype.DeploymentRequest{Name: name, Flow: flow, MaxActive: maxActive, Collision: collision,
			Schedules: []apitype.ScheduleRequest{{Cron: cron, Interval: interval, RRule: rrule, Timezone: tz,
				Overlap: overlap, Catchup: catchup, Jitter: jitter}}}
		now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		d, err := deploy.Build(req, store.SourceAPI, now)
		if err != nil {
			var de *deploy.Error
			if !errors.As(err, &de) || de.Status != http.StatusBadRequest || de.Msg == "" {
				t.Fatalf("refusal %v is not a 400 with a message", err)
			}
			return
		}
		again, err := deploy.Build(req, store.SourceAPI, now.Add(time.Hour))
		if err != nil || again.Hash != d.Hash || again.Schedules[0].ID != d.Schedules[0].ID {
			t.Fatalf("the same declaration built twice differs: %v", err)
		}
		if _, err := deploy.NextFires(d, now, 3); err != nil {
			t.Fatalf("a built deployment has no fire times: %v", err)
		}
	})
}
