package conf

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	env := map[string]string{"ADDR": "from-env", "WAIT": "3s", "N": "7"}
	tests := []struct {
		name     string
		args     []string
		wantAddr string
		wantWait time.Duration
		wantN    int
		wantFlag bool
	}{
		{"env over default", nil, "from-env", 3 * time.Second, 7, false},
		{"flag over env", []string{"-addr", "from-flag", "-wait", "1m", "-n", "9", "-on"}, "from-flag", time.Minute, 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				addr string
				wait time.Duration
				n    int
				on   bool
				def  string
			)
			s := New("test", func(k string) string { return env[k] }, &bytes.Buffer{})
			s.String(&addr, "addr", "ADDR", "default", "")
			s.String(&def, "other", "OTHER", "default", "")
			s.Duration(&wait, "wait", "WAIT", time.Second, "")
			s.Int(&n, "n", "N", 1, "")
			s.Bool(&on, "on", "ON", false, "")
			if err := s.Parse(tt.args); err != nil {
				t.Fatalf("Parse(%q) = %v", tt.args, err)
			}
			if addr != tt.wantAddr || wait != tt.wantWait || n != tt.wantN || on != tt.wantFlag || def != "default" {
				t.Errorf("Parse(%q) = %q %v %d %v %q; want %q %v %d %v %q", tt.args, addr, wait, n, on, def,
					tt.wantAddr, tt.wantWait, tt.wantN, tt.wantFlag, "default")
			}
		})
	}
}

func TestBadEnvironmentIsReportedWithItsName(t *testing.T) {
	env := map[string]string{"WAIT": "soon", "N": "many"}
	var (
		wait time.Duration
		n    int
	)
	s := New("test", func(k string) string { return env[k] }, &bytes.Buffer{})
	s.Duration(&wait, "wait", "WAIT", time.Second, "")
	s.Int(&n, "n", "N", 1, "")
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "$WAIT") || !strings.Contains(err.Error(), "$N") {
		t.Errorf("Parse = %v; want errors naming $WAIT and $N", err)
	}
}

func TestHelpListsEnvironmentVariables(t *testing.T) {
	var out bytes.Buffer
	var addr string
	s := New("test", func(string) string { return "" }, &out)
	s.String(&addr, "http-addr", "HTTP_ADDR", ":8080", "HTTP listen address")
	if err := s.Parse([]string{"-help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-help) = %v; want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-http-addr") || !strings.Contains(out.String(), "[$HTTP_ADDR]") {
		t.Errorf("help = %q; want the flag and its variable", out.String())
	}
}

func TestNewLogger(t *testing.T) {
	var out bytes.Buffer
	log, err := NewLogger(&out, "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "err", "x")
	if strings.Contains(out.String(), "hidden") || !strings.Contains(out.String(), `"msg":"shown"`) {
		t.Errorf("log output = %q; want only the warning, as JSON", out.String())
	}
	if _, err := NewLogger(&out, "loud"); err == nil {
		t.Error("NewLogger(loud) succeeded; want an error")
	}
}
