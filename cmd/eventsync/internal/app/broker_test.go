package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInternalPassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, NATSPasswordFile)
	first, err := internalPassword(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("new password file has mode %04o; want 0600", perm)
	}
	if len(first) != 43 {
		t.Errorf("password %q: want 43 characters (32 random bytes)", first)
	}
	again, err := internalPassword(path)
	if err != nil || again != first {
		t.Errorf("internalPassword again = %q, %v; want the first, %q", again, err, first)
	}

	for _, tt := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // in the error; empty: none
		wantPwd string
	}{
		{"kept as written, trimmed", "  chosen-password\n", 0o600, "", "chosen-password"},
		{"owner read-only", "pw", 0o400, "", "pw"},
		{"readable by others", "pw", 0o644, "mode 0644", ""},
		{"readable by the group", "pw", 0o640, "chmod 600", ""},
		{"writable by others", "pw", 0o602, "mode 0602", ""},
		{"empty", "\n", 0o600, "is empty", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), NATSPasswordFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // WriteFile's mode is subject to the umask
				t.Fatal(err)
			}
			got, err := internalPassword(path)
			if tt.want == "" {
				if err != nil || got != tt.wantPwd {
					t.Errorf("internalPassword = %q, %v; want %q", got, err, tt.wantPwd)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("internalPassword = %q, %v; want an error about %q", got, err, tt.want)
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), NATSPasswordFile)
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if got, err := internalPassword(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("internalPassword = %q, %v; want an error about a regular file", got, err)
		}
	})
}

func TestNATSUsers(t *testing.T) {
	const hash = "$2a$10$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ"
	producers := map[string][]byte{
		"prd_billing":  []byte(`{"id":"prd_billing","name":"billing","enabled":true,"tags":["BILLING.>","SHARED.*"],"credentials":{"password_hash":"` + hash + `","jwt_secret":"s"}}`),
		"prd_wide":     []byte(`{"id":"prd_wide","name":"wide","enabled":true,"tags":[">"],"credentials":{"password_hash":"` + hash + `"}}`),
		"prd_off":      []byte(`{"id":"prd_off","name":"off","enabled":false,"tags":[">"],"credentials":{"password_hash":"` + hash + `"}}`),
		"prd_nopass":   []byte(`{"id":"prd_nopass","name":"nopass","enabled":true,"tags":[">"],"credentials":{}}`),
		"name.billing": []byte(`prd_billing`),
		"prd_broken":   []byte(`{"id":`),
		"prd_moved":    []byte(`{"id":"prd_other","enabled":true,"credentials":{"password_hash":"` + hash + `"}}`),
	}
	owners := map[string][]byte{"BILLING": []byte("prd_billing"), "SHARED": []byte("prd_wide"), "OPS.DEPLOY": []byte("prd_ops")}

	inbox := func(id string) []string { return []string{"_INBOX." + id + ".>"} }
	tests := []struct {
		direct bool
		want   []natsUser
	}{
		{false, []natsUser{
			{User: "prd_billing", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: inbox("prd_billing")},
			{User: "prd_wide", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest"}, SubscribeAllow: inbox("prd_wide")},
		}},
		{true, []natsUser{
			{User: "prd_billing", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest", "events.BILLING.>", "events.SHARED.*"},
				PublishDeny: []string{"events.SHARED.*"}, SubscribeAllow: inbox("prd_billing")},
			{User: "prd_wide", PasswordHash: hash, PublishAllow: []string{"eventsync.ingest", "events.>"},
				PublishDeny: []string{"events.BILLING.*", "events.OPS.DEPLOY.*"}, SubscribeAllow: inbox("prd_wide")},
		}},
	}
	for _, tt := range tests {
		got, err := natsUsers(producers, owners, tt.direct)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("natsUsers(direct %t) mismatch (-want +got):\n%s", tt.direct, diff)
		}
		if err == nil || !strings.Contains(err.Error(), "prd_broken") || !strings.Contains(err.Error(), "prd_moved") {
			t.Errorf("natsUsers(direct %t) error = %v; want it to name prd_broken and prd_moved", tt.direct, err)
		}
	}
}
