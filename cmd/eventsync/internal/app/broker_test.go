package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInternalPassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, NATSPasswordFile)
	first, err := secretFile(path, "nats password")
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
	again, err := secretFile(path, "nats password")
	if err != nil || again != first {
		t.Errorf("secretFile again = %q, %v; want the first, %q", again, err, first)
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
			got, err := secretFile(path, "nats password")
			if tt.want == "" {
				if err != nil || got != tt.wantPwd {
					t.Errorf("secretFile = %q, %v; want %q", got, err, tt.wantPwd)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("secretFile = %q, %v; want an error about %q", got, err, tt.want)
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), NATSPasswordFile)
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if got, err := secretFile(path, "nats password"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("secretFile = %q, %v; want an error about a regular file", got, err)
		}
	})
}
