package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestConsumerPositionSurvivesRestart: a consumer's acknowledged position
// and its unacknowledged events are intact after the whole process
// restarts on the same data directory.
func TestConsumerPositionSurvivesRestart(t *testing.T) {
	srv := startApp(t, "")
	base := srv.Base
	if status, _, _ := call(t, "PUT", base+"/v1/consumers/worker", "", `{"tags":["JOB.*"],"start":"all"}`); status != http.StatusCreated {
		t.Fatalf("create consumer = %d", status)
	}
	for i := range 5 {
		post(t, base+"/v1/events", "application/json", fmt.Sprintf(`{"id":"job-%d","tag":"JOB.DONE","message":"m"}`, i))
		post(t, base+"/v1/events", "application/json", `{"tag":"OTHER.THING","message":"m"}`)
	}
	type batch struct {
		Events []struct {
			ID  string `json:"id"`
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	b := get[batch](t, base+"/v1/consumers/worker/events?limit=3")
	if len(b.Events) != 3 || b.Events[0].ID != "job-0" {
		t.Fatalf("first read = %+v; want job-0..job-2", b.Events)
	}
	if status := postJSON(t, base+"/v1/consumers/worker/ack", fmt.Sprintf(`{"seq":%d}`, b.Events[1].Seq), nil); status != http.StatusOK {
		t.Fatalf("ack = %d", status)
	}
	srv.Restart()
	base = srv.Base
	var after batch
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if after = get[batch](t, base+"/v1/consumers/worker/events?limit=10"); len(after.Events) > 0 {
			break
		}
	}
	var ids []string
	for _, e := range after.Events {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[job-2 job-3 job-4]" {
		t.Errorf("after restart the consumer reads %v; want [job-2 job-3 job-4] (job-2 was delivered but not acknowledged)", ids)
	}
}
