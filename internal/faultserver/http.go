// HTTP semantics the server keeps: conditional requests and byte ranges.

package faultserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// checkPreconditions applies If-Match, If-Unmodified-Since, If-None-Match
// and If-Modified-Since (RFC 9110 §13.2.2) and returns the status to answer
// with, or 0 to go on.
func checkPreconditions(r *http.Request, etag string, mtime time.Time) int {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatch(im, etag, true) {
			return http.StatusPreconditionFailed
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && mtime.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatch(inm, etag, false) {
			return http.StatusNotModified
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !mtime.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// rangeApplies evaluates If-Range: the Range header counts only when the
// validator still matches (a strong ETag or the exact Last-Modified date).
func rangeApplies(r *http.Request, etag string, mtime time.Time) bool {
	ir := r.Header.Get("If-Range")
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return ir == etag
	}
	t, err := http.ParseTime(ir)
	return err == nil && t.Equal(mtime)
}

// etagListMatch reports whether the If-Match/If-None-Match list matches
// etag, with strong comparison when strong is set and weak otherwise.
func etagListMatch(list, etag string, strong bool) bool {
	for _, tag := range strings.Split(list, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		if strong {
			if tag == etag {
				return true
			}
			continue
		}
		if strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// parseRange parses a single byte range (bytes=a-b, bytes=a-, bytes=-n)
// against size; end is inclusive. ok is false for anything else (several
// ranges, bad syntax), which is then ignored; unsat is true for a range
// that starts beyond the end.
func parseRange(h string, size int64) (start, end int64, ok, unsat bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" { // suffix: the last b bytes
		n, err := parseDigits(b)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, false, true
		}
		return max(size-n, 0), size - 1, true, false
	}
	start, err := parseDigits(a)
	if err != nil {
		return 0, 0, false, false
	}
	end = size - 1
	if b != "" {
		if end, err = parseDigits(b); err != nil || end < start {
			return 0, 0, false, false
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, false, true
	}
	return start, end, true, false
}

var errNotDigits = errors.New("not a decimal number")

func parseDigits(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errNotDigits
	}
	return strconv.ParseInt(s, 10, 64)
}
