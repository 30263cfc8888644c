package deploy

import (
	"encoding/json"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// View is the API document of d, with its history when hist is set.
func View(d store.Deployment, hist []store.DeploymentHistoryEntry) apitype.Deployment {
	v := apitype.Deployment{Name: d.Name, Flow: d.Flow, Description: d.Description, Parameters: d.Parameters,
		Queue: d.Queue, Tags: d.Tags, MaxActive: d.MaxActive, Collision: d.Collision, Paused: d.Paused,
		PauseNote: d.PauseNote, Source: d.Source, Hash: d.Hash, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Schedules: []apitype.Schedule{}}
	if v.Parameters == nil {
		v.Parameters = json.RawMessage("null")
	}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	for _, s := range d.Schedules {
		sv := apitype.Schedule{ID: s.ID, Cron: s.Cron, RRule: s.RRule, Timezone: s.Timezone, Overlap: s.Overlap,
			Catchup: FormatCatchup(s.Catchup), Paused: s.Paused, PauseNote: s.PauseNote,
			LastFire: timePtr(s.LastFire), NextFire: timePtr(s.NextFire)}
		if s.Interval != 0 {
			sv.Interval = s.Interval.String()
			sv.Anchor = timePtr(s.Anchor)
		}
		if s.Jitter != 0 {
			sv.Jitter = s.Jitter.String()
		}
		v.Schedules = append(v.Schedules, sv)
	}
	for _, h := range hist {
		v.History = append(v.History, apitype.DeploymentHistoryEntry{Seq: h.Seq, At: h.At, Actor: h.Actor.String(),
			Action: h.Action, Reason: h.Reason, Data: h.Payload})
	}
	return v
}

// Request is the declaration of d, as an API request: what `deployments
// update` changes and sends back.
func Request(d store.Deployment) apitype.DeploymentRequest {
	r := apitype.DeploymentRequest{Name: d.Name, Flow: d.Flow, Description: d.Description, Parameters: d.Parameters,
		Queue: d.Queue, Tags: d.Tags, MaxActive: d.MaxActive, Collision: d.Collision}
	for _, s := range d.Schedules {
		sr := apitype.ScheduleRequest{Cron: s.Cron, RRule: s.RRule, Timezone: s.Timezone, Overlap: s.Overlap,
			Catchup: FormatCatchup(s.Catchup)}
		if s.Interval != 0 {
			sr.Interval = s.Interval.String()
			sr.Anchor = timePtr(s.Anchor)
		}
		if s.Jitter != 0 {
			sr.Jitter = s.Jitter.String()
		}
		r.Schedules = append(r.Schedules, sr)
	}
	return r
}

// NextView is the API document of a preview.
func NextView(name string, fires []Fire) apitype.DeploymentNext {
	out := apitype.DeploymentNext{Deployment: name, Fires: []apitype.FireTime{}}
	for _, f := range fires {
		out.Fires = append(out.Fires, apitype.FireTime{Schedule: f.Schedule.ID, At: f.At, Local: f.Local.Format(time.RFC3339 + " MST")})
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
