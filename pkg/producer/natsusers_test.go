package producer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNATSUsers(t *testing.T) {
	const hash = "$2a$10$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ"
	producers := map[string][]byte{
		"prd_billing":  []byte(`{"id":"prd_billing","name":"billing","enabled":true,"tags":["BILLING.>","SHARED.*"],"credentials":{"password_hash":"` + hash + `","jwt_secret":"s"}}`),
		"prd_wide":     []byte(`{"id":"prd_wide","name":"wide","enabled":true,"tags":[">"],"credentials":{"password_hash":"` + hash + `"}}`),
		"prd_off":      []byte(`{"id":"prd_off","name":"off","enabled":false,"tags":[">"],"credentials":{"password_hash":"` + hash + `"}}`),
		"prd_nopass":   []byte(`{"id":"prd_nopass","name":"nopass","enabled":true,"tags":[">"],"credentials":{}}`),
		"prd_reader":   []byte(`{"id":"prd_reader","name":"reader","enabled":true,"scopes":{"read":[">"]},"credentials":{"password_hash":"` + hash + `"}}`),
		"name.billing": []byte(`prd_billing`),
		"prd_broken":   []byte(`{"id":`),
		"prd_moved":    []byte(`{"id":"prd_other","enabled":true,"credentials":{"password_hash":"` + hash + `"}}`),
	}
	owners := map[string][]byte{"BILLING": []byte("prd_billing"), "SHARED": []byte("prd_wide"), "OPS.DEPLOY": []byte("prd_ops")}

	inbox := func(id string) []string { return []string{"_INBOX." + id + ".>"} }
	tests := []struct {
		direct bool
		want   []NATSUser
	}{
		{false, []NATSUser{
			{User: "prd_billing", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: inbox("prd_billing")},
			{User: "prd_wide", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: inbox("prd_wide")},
		}},
		{true, []NATSUser{
			{User: "prd_billing", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest", "events.BILLING.>", "events.SHARED.*"},
				PublishDeny: []string{"events.SHARED.>"}, SubscribeAllow: inbox("prd_billing")},
			{User: "prd_wide", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest", "events.>"},
				PublishDeny: []string{"events.BILLING.>", "events.OPS.DEPLOY.>"}, SubscribeAllow: inbox("prd_wide")},
		}},
	}
	for _, tt := range tests {
		got, err := DecodeNATSUsers(producers, owners, tt.direct)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DecodeNATSUsers(direct %t) mismatch (-want +got):\n%s", tt.direct, diff)
		}
		if err == nil || !strings.Contains(err.Error(), "prd_broken") || !strings.Contains(err.Error(), "prd_moved") {
			t.Errorf("DecodeNATSUsers(direct %t) error = %v; want it to name prd_broken and prd_moved", tt.direct, err)
		}
	}
}
