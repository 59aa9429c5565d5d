package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
)

// A client is configured once with the server's base URL and one
// credential; options left out keep their defaults.
func ExampleNew() {
	_, err := client.New("localhost:8080")
	fmt.Println(err)

	c, err := client.New("http://127.0.0.1:8080",
		client.WithAPIKey("esk_…"),
		client.WithRetry(3, 100*time.Millisecond),
	)
	fmt.Println(c != nil, err)
	// Output:
	// base url "localhost:8080": want http:// or https:// and a host
	// true <nil>
}

// Error answers are *client.Error values with the problem the server sent:
// a 422 names each invalid field of each event by its index among those
// given to Send.
func ExampleError() {
	// A server answering as EventSync does to an event from the future.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"type":"https://eventsync.dev/problems/validation","title":"Unprocessable Entity","status":422,
			"detail":"1 rule(s) broken; nothing was published",
			"errors":[{"pointer":"/1/timestamp","detail":"is more than 1m0s in the future"}]}`)
	}))
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.Send(context.Background(),
		client.Event{Tag: "BILLING.CHARGED", Message: "charged"},
		client.Event{Tag: "BILLING.CHARGED", Message: "charged later", Timestamp: time.Now().Add(time.Hour)},
	)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Detail)
		for _, fe := range e.Errors {
			fmt.Println(fe.Pointer, fe.Detail)
		}
	}
	// Output:
	// 422 1 rule(s) broken; nothing was published
	// /1/timestamp is more than 1m0s in the future
}
