package httpserve

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListenLimits(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want Options
	}{
		{
			name: "defaults",
			want: Options{
				ReadHeaderTimeout: DefaultReadHeaderTimeout,
				ReadTimeout:       DefaultReadTimeout,
				WriteTimeout:      DefaultWriteTimeout,
				IdleTimeout:       DefaultIdleTimeout,
				MaxHeaderBytes:    DefaultMaxHeaderBytes,
				ShutdownTimeout:   DefaultShutdownTimeout,
			},
		},
		{
			name: "set",
			o:    Options{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5, ShutdownTimeout: 6},
			want: Options{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5, ShutdownTimeout: 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ListenWith("127.0.0.1:0", http.NotFoundHandler(), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.ln.Close()
			got := Options{
				ReadHeaderTimeout: s.srv.ReadHeaderTimeout,
				ReadTimeout:       s.srv.ReadTimeout,
				WriteTimeout:      s.srv.WriteTimeout,
				IdleTimeout:       s.srv.IdleTimeout,
				MaxHeaderBytes:    s.srv.MaxHeaderBytes,
				ShutdownTimeout:   s.shutdown,
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ListenWith(%+v) limits (-want +got):\n%s", tt.o, diff)
			}
		})
	}
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler(), 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	if s.srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.srv.WriteTimeout != DefaultWriteTimeout || s.shutdown != 7*time.Second {
		t.Errorf("Listen(7s): read header %s, write %s, shutdown %s; want %s, %s, 7s",
			s.srv.ReadHeaderTimeout, s.srv.WriteTimeout, s.shutdown, DefaultReadHeaderTimeout, DefaultWriteTimeout)
	}
}
