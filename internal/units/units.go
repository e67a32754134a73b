// Package units parses and formats the quantities an operator types and
// reads: sizes (8MiB), rates (512K, off), durations (9h50m) and wall-clock
// deadlines (--until 07:00).
//
// Sizes and rates use powers of 1024 for the suffixes K, M, G and T, with an
// optional "iB" or "B" after them, case-insensitive, as the SPEC says.
package units

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every parse error of this package, so callers can
// map a bad flag value to a usage error with errors.Is.
var ErrInvalid = errors.New("invalid value")

// Binary multiples.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

const sizeForm = "a number with an optional K, M, G or T suffix (powers of 1024), e.g. 8MiB, 512K, 1.5G"

// ParseSize parses a byte count: "100", "512K", "8M", "8m", "8MiB", "8MB",
// "1.5GiB". Fractions are allowed with a suffix and rounded down to whole
// bytes. Negative values and values beyond int64 are refused.
func ParseSize(s string) (int64, error) {
	n, err := parseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w: want %s", s, ErrInvalid, sizeForm)
	}
	return n, nil
}

// ParseRate parses a rate in bytes per second: the forms of ParseSize,
// optionally followed by "/s" ("1MiB/s"), or "off" for no limit. "off" and
// any zero value return 0, which means unlimited.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	if len(t) > 2 && strings.EqualFold(t[len(t)-2:], "/s") {
		t = t[:len(t)-2]
	}
	n, err := parseBytes(t)
	if err != nil {
		return 0, fmt.Errorf("rate %q: %w: want bytes per second as %s, or off", s, ErrInvalid, sizeForm)
	}
	return n, nil
}

// parseBytes does the work of ParseSize without the message.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	dots := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		if s[i] == '.' {
			dots++
		}
		i++
	}
	num, suffix := s[:i], strings.TrimSpace(s[i:])
	if num == "" || num == "." || dots > 1 {
		return 0, ErrInvalid
	}
	mult, ok := multiplier(suffix)
	if !ok {
		return 0, ErrInvalid
	}
	if dots > 0 && mult == 1 {
		return 0, ErrInvalid // a fraction of a byte means a typo
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, ErrInvalid
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	q := new(big.Int).Quo(r.Num(), r.Denom()) // exact, rounds toward zero
	if !q.IsInt64() {
		return 0, ErrInvalid
	}
	return q.Int64(), nil
}

// multiplier maps a suffix ("", "K", "KiB", "kb", ...) to its value.
func multiplier(suffix string) (int64, bool) {
	u := strings.ToUpper(suffix)
	if u == "" || u == "B" {
		return 1, true
	}
	var m int64
	switch u[0] {
	case 'K':
		m = KiB
	case 'M':
		m = MiB
	case 'G':
		m = GiB
	case 'T':
		m = TiB
	default:
		return 0, false
	}
	switch u[1:] {
	case "", "B", "IB":
		return m, true
	}
	return 0, false
}

var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// FormatBytes renders n for people: "512 B", "8.0 MiB", "38.2 GiB",
// "123 MiB" (one decimal below 100 of a unit, none above).
func FormatBytes(n int64) string {
	if n < 0 {
		if n == math.MinInt64 {
			return "-8.0 EiB"
		}
		return "-" + FormatBytes(-n)
	}
	return formatScaled(float64(n))
}

// FormatRate renders a rate in bytes per second: "1.1 MiB/s", "800 B/s".
// Negative, NaN and infinite rates render as "-".
func FormatRate(bytesPerSec float64) string {
	if math.IsNaN(bytesPerSec) || math.IsInf(bytesPerSec, 0) || bytesPerSec < 0 {
		return "-"
	}
	return formatScaled(bytesPerSec) + "/s"
}

func formatScaled(v float64) string {
	if v < 1024 {
		return fmt.Sprintf("%.0f B", math.Floor(v))
	}
	u := 0
	for u < len(byteUnits)-1 && v >= 1024 {
		v /= 1024
		u++
	}
	switch {
	case math.Round(v*10)/10 >= 1024 && u < len(byteUnits)-1:
		// 1023.96 KiB would print as "1024.0 KiB".
		return fmt.Sprintf("%.1f %s", v/1024, byteUnits[u+1])
	case math.Round(v*10)/10 >= 100:
		return fmt.Sprintf("%.0f %s", v, byteUnits[u])
	default:
		return fmt.Sprintf("%.1f %s", v, byteUnits[u])
	}
}

// FormatDuration renders d the way an operator reads a plan: "9h50m" from an
// hour up (rounded to the minute), "3m12s" from a minute up, "45s" below
// (rounded to the second), "350ms" below a second. Hours are not folded
// into days, so the result is also valid input for --max-time.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		if d == math.MinInt64 {
			d++
		}
		return "-" + FormatDuration(-d)
	}
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	if s := d.Round(time.Second); s < time.Minute {
		return fmt.Sprintf("%ds", int64(s/time.Second))
	} else if s < time.Hour {
		return fmt.Sprintf("%dm%ds", int64(s/time.Minute), int64(s%time.Minute/time.Second))
	}
	m := d.Round(time.Minute)
	return fmt.Sprintf("%dh%dm", int64(m/time.Hour), int64(m%time.Hour/time.Minute))
}

// ParseClock parses "HH:MM" (or "H:MM") on a 24-hour clock and returns the
// hour and minute.
func ParseClock(s string) (hour, minute int, err error) {
	t := strings.TrimSpace(s)
	h, m, ok := strings.Cut(t, ":")
	if ok && len(h) >= 1 && len(h) <= 2 && len(m) == 2 && digits(h) && digits(m) {
		hour = atoi(h)
		minute = atoi(m)
		if hour < 24 && minute < 60 {
			return hour, minute, nil
		}
	}
	return 0, 0, fmt.Errorf("time of day %q: %w: want HH:MM on a 24-hour clock, e.g. 07:00", s, ErrInvalid)
}

// ParseUntil parses a --until value, "HH:MM" local time, and returns the next
// such moment after now, in now's location: later today, or tomorrow when
// that time has already passed today (or is exactly now).
func ParseUntil(s string, now time.Time) (time.Time, error) {
	h, m, err := ParseClock(s)
	if err != nil {
		return time.Time{}, err
	}
	y, mo, d := now.Date()
	t := time.Date(y, mo, d, h, m, 0, 0, now.Location())
	if !t.After(now) {
		t = time.Date(y, mo, d+1, h, m, 0, 0, now.Location())
	}
	return t, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
