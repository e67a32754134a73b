package units

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"100", 100},
		{"0", 0},
		{"512K", 512 * KiB},
		{"512k", 512 * KiB},
		{"512KB", 512 * KiB},
		{"512kib", 512 * KiB},
		{"8M", 8 * MiB},
		{"8m", 8 * MiB},
		{"8MiB", 8 * MiB},
		{"8MB", 8 * MiB},
		{"8 MiB", 8 * MiB},
		{" 8MiB ", 8 * MiB},
		{"1G", GiB},
		{"1.5GiB", GiB + GiB/2},
		{"1.1G", 1181116006}, // 1.1 * 2^30 rounded down, computed exactly
		{"2T", 2 * TiB},
		{"100B", 100},
		{"0.5K", 512},
		{".5K", 512},
		{"8388607T", 8388607 * TiB},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	for _, in := range []string{"", " ", "K", "8X", "8KK", "8Kb/s", "-1", "-1M", "1.5", "1..5M", "1.2.3M", "1e3", "0x10", "8 M B", "8388608T", "99999999999999999999", "off", "1/2M", "8Mi"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseSize(in)
			if err == nil {
				t.Fatalf("ParseSize(%q): no error", in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"`+in+`"`) || !strings.Contains(msg, "8MiB") {
				t.Errorf("message %q should quote the value and show the expected form", msg)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"off", 0},
		{"OFF", 0},
		{"0", 0},
		{"0K", 0},
		{"512K", 512 * KiB},
		{"1M", MiB},
		{"1MiB/s", MiB},
		{"100", 100},
		{"1.5m", MiB + MiB/2},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	for _, in := range []string{"", "fast", "-1K", "1M/h", "/s", "of"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseRate(in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "off") {
				t.Fatalf("ParseRate(%q) error = %v; want ErrInvalid naming the forms", in, err)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{8 * MiB, "8.0 MiB"},
		{123 * MiB, "123 MiB"},
		{38*GiB + GiB/5 + GiB/100, "38.2 GiB"},
		{1024*KiB - 1, "1.0 MiB"}, // 1023.999 KiB must not print as "1024.0 KiB"
		{100*KiB - 1, "100 KiB"},
		{3 * TiB, "3.0 TiB"},
		{-2048, "-2.0 KiB"},
		{math.MaxInt64, "8.0 EiB"},
		{math.MinInt64, "-8.0 EiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatBytes(tt.in); got != tt.want {
				t.Fatalf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatRate(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0 B/s"},
		{800, "800 B/s"},
		{1.1 * float64(MiB), "1.1 MiB/s"},
		{100 * 1024 / 8 * 8, "100 KiB/s"},
		{-1, "-"},
		{math.NaN(), "-"},
		{math.Inf(1), "-"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatRate(tt.in); got != tt.want {
				t.Fatalf("FormatRate(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0ms"},
		{350 * time.Millisecond, "350ms"},
		{time.Second, "1s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m0s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{time.Hour, "1h0m"},
		{59*time.Minute + 59*time.Second + 700*time.Millisecond, "1h0m"},
		{9*time.Hour + 50*time.Minute + 10*time.Second, "9h50m"},
		{9*time.Hour + 5*time.Minute, "9h5m"},
		{30 * time.Hour, "30h0m"},
		{-45 * time.Second, "-45s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatDuration(tt.in); got != tt.want {
				t.Fatalf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// What FormatDuration prints from an hour up must be valid --max-time input.
	if d, err := time.ParseDuration(FormatDuration(30*time.Hour + 7*time.Minute)); err != nil || d != 30*time.Hour+7*time.Minute {
		t.Errorf("round trip: %v, %v", d, err)
	}
}

func TestParseUntil(t *testing.T) {
	loc := time.FixedZone("TEST", 3*3600)
	at := func(d, h, m, s int) time.Time { return time.Date(2026, 11, d, h, m, s, 0, loc) }
	tests := []struct {
		name string
		in   string
		now  time.Time
		want time.Time
	}{
		{"later today", "07:00", at(20, 2, 15, 0), at(20, 7, 0, 0)},
		{"already past: tomorrow", "07:00", at(20, 22, 0, 0), at(21, 7, 0, 0)},
		{"exactly now: tomorrow", "07:00", at(20, 7, 0, 0), at(21, 7, 0, 0)},
		{"a second before", "07:00", at(20, 6, 59, 59), at(20, 7, 0, 0)},
		{"midnight", "00:00", at(20, 23, 30, 0), at(21, 0, 0, 0)},
		{"single-digit hour", "7:05", at(20, 1, 0, 0), at(20, 7, 5, 0)},
		{"end of month", "06:00", time.Date(2026, 11, 30, 23, 0, 0, 0, loc), time.Date(2026, 12, 1, 6, 0, 0, 0, loc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUntil(tt.in, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || got.Location() != loc {
				t.Fatalf("ParseUntil(%q, %v) = %v, want %v", tt.in, tt.now, got, tt.want)
			}
		})
	}
	for _, in := range []string{"", "7", "24:00", "07:60", "0700", "07:0", "7pm", "07:00:00", "-1:00", "aa:bb", "123:00"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseUntil(in, at(20, 0, 0, 0))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseUntil(%q) error = %v, want ErrInvalid", in, err)
			}
			if !strings.Contains(err.Error(), `"`+in+`"`) || !strings.Contains(err.Error(), "HH:MM") {
				t.Errorf("message %q should quote the value and name HH:MM", err)
			}
		})
	}
}
