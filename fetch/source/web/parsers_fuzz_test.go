package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/haul-dev/haul/internal/gen"
)

// Fuzz targets for the response headers this source parses (issue 15).
// The seeds are the files of the repository's testdata/fuzz/<Target>/;
// a crash found by fuzzing is added there as a file holding the input.

// FuzzParseContentRange: an accepted Content-Range is a real range
// (0 ≤ a ≤ b, b < total when known) and prints back to what it parsed
// from.
func FuzzParseContentRange(f *testing.F) {
	gen.AddSeeds(f, "FuzzParseContentRange")
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b, total, err := parseContentRange(string(in))
		if err != nil {
			return
		}
		if a < 0 || b < a || total < -1 || total >= 0 && b >= total {
			t.Fatalf("%q gave a=%d b=%d total=%d", in, a, b, total)
		}
		tot := "*"
		if total >= 0 {
			tot = fmt.Sprint(total)
		}
		again := fmt.Sprintf("bytes %d-%d/%s", a, b, tot)
		a2, b2, t2, err := parseContentRange(again)
		if err != nil || a2 != a || b2 != b || t2 != total {
			t.Fatalf("%q → %q reads back as %d-%d/%d (%v)", in, again, a2, b2, t2, err)
		}
	})
}

// FuzzStrongETag: a weak or empty tag pins nothing; a strong one comes
// back without its quotes, and quoting it again gives it back.
func FuzzStrongETag(f *testing.F) {
	gen.AddSeeds(f, "FuzzStrongETag")
	f.Fuzz(func(t *testing.T, in []byte) {
		v := string(in)
		et := strongETag(v)
		if strings.HasPrefix(strings.TrimSpace(v), "W/") && et != "" {
			t.Fatalf("weak ETag %q pinned as %q", v, et)
		}
		if strings.HasPrefix(et, `"`) || strings.HasSuffix(et, `"`) {
			t.Fatalf("%q kept a quote: %q", v, et)
		}
		if et != "" && strongETag(`"`+et+`"`) != et {
			t.Fatalf("%q: %q quoted again reads %q", v, et, strongETag(`"`+et+`"`))
		}
	})
}
