package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haul-dev/haul/chunk"
	"github.com/haul-dev/haul/fetch/contact"
	"github.com/haul-dev/haul/fetch/source/open"
	"github.com/haul-dev/haul/internal/retry"
)

// TestContactRule runs Fetch against an HTTP address where nothing listens,
// with the DEST's record of that source in each state a user can leave it
// in: never reached (a wrong address: *UnreachableError after one quick
// retry), reached (the network down: ErrNetworkDown after --retries),
// failing since 25 h (the default --give-up-after passed: *GaveUpError),
// and the same with giving up switched off.
func TestContactRule(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused from now on
	url := "http://" + addr + "/site.tar.gz"
	id := "http://" + addr
	past := time.Now().Add(-25 * time.Hour).UTC()
	hourAgo := time.Now().Add(-time.Hour).UTC()

	for _, c := range []struct {
		name    string
		rec     *contact.Record
		giveUp  time.Duration
		want    error
		retries int // retry events
	}{
		{"never reached", nil, 0, contact.ErrUnreachable, 1},
		{"reached, down", &contact.Record{Reached: &past}, 0, ErrNetworkDown, 3},
		{"reached, down for an hour", &contact.Record{Reached: &past, FailingSince: &hourAgo}, 0, ErrNetworkDown, 3},
		{"reached, down for 25h", &contact.Record{Reached: &past, FailingSince: &past}, 0, contact.ErrGaveUp, 3},
		{"down for 25h, never give up", &contact.Record{Reached: &past, FailingSince: &past}, -1, ErrNetworkDown, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			if c.rec != nil {
				writeContact(t, dest, id, *c.rec)
			}
			var retries atomic.Int32
			opts := Options{Sources: []string{url}, Dest: dest, Retries: 4, GiveUpAfter: c.giveUp,
				Backoff: func(int) time.Duration { return time.Millisecond },
				Progress: progressFunc(func(ev Event) {
					if ev.Kind == chunk.EventRetry {
						retries.Add(1)
					}
				})}
			_, err := Fetch(context.Background(), opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if got := int(retries.Load()); got != c.retries {
				t.Errorf("%d retries, want %d", got, c.retries)
			}
			if retry.IsNetwork(err) && c.want != ErrNetworkDown {
				t.Errorf("%v reads as a network failure (exit 75)", err)
			}
			got := readContact(t, dest)[id]
			if c.want == contact.ErrUnreachable && got.FailingSince != nil {
				t.Errorf("a source never reached got a failure clock: %+v", got)
			}
			if c.rec != nil && c.rec.FailingSince == nil && (got.FailingSince == nil || time.Since(*got.FailingSince) > time.Minute) {
				t.Errorf("the first failure after contact was not dated now: %+v", got)
			}
			if c.rec != nil && c.rec.FailingSince != nil && !got.FailingSince.Equal(*c.rec.FailingSince) {
				t.Errorf("failing since moved from %v to %v: the clock runs across runs", c.rec.FailingSince, got.FailingSince)
			}
		})
	}
}

// TestContactReset: a run that reaches the source records it and stops
// the failure clock; the record keeps other sources' entries.
func TestContactReset(t *testing.T) {
	body := []byte("a part of the set")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/x" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "x", time.Unix(1e9, 0), bytesReader(body))
	}))
	defer srv.Close()
	dest := t.TempDir()
	past := time.Now().Add(-25 * time.Hour).UTC()
	writeContact(t, dest, srv.URL, contact.Record{Reached: &past, FailingSince: &past})
	writeContact(t, dest, "sftp://other", contact.Record{Reached: &past})
	if _, err := Fetch(context.Background(), Options{Sources: []string{srv.URL + "/x"}, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	book := readContact(t, dest)
	got := book[srv.URL]
	if got.FailingSince != nil || got.Reached == nil || !got.Reached.After(past) {
		t.Errorf("after a good run: %+v, want reached now and no failure clock", got)
	}
	if book["sftp://other"].Reached == nil {
		t.Errorf("the other source's record was lost: %v", book)
	}
	fi, err := os.Stat(filepath.Join(dest, chunk.StateDir, contact.File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("contact record: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

func writeContact(t *testing.T, dest, id string, rec contact.Record) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dest, chunk.StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	c := contact.Load(dest, open.Target{ID: id})
	c.Rec = rec
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
}

func readContact(t *testing.T, dest string) map[string]contact.Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dest, chunk.StateDir, contact.File))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var b struct {
		Sources map[string]contact.Record `json:"sources"`
	}
	if err == nil {
		err = json.Unmarshal(data, &b)
	}
	if err != nil {
		t.Fatal(fmt.Errorf("contact record: %w", err))
	}
	return b.Sources
}

// progressFunc is a Progress that hands every event to a function.
type progressFunc func(Event)

func (progressFunc) Plan([]PartProgress)  {}
func (progressFunc) Pulled(string, int64) {}
func (f progressFunc) Event(e Event)      { f(e) }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
