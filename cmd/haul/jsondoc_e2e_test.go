package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readmeJSONFields is every name written `like_this` in the README's
// "JSON outputs" section: the documented fields (and their values).
func readmeJSONFields(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## JSON outputs\n")
	if i < 0 {
		t.Fatal("the README has no JSON outputs section")
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z_]+)(\\[\\])?`").FindAllStringSubmatch(s, -1) {
		out[m[1]] = true
	}
	return out
}

// jsonKeys collects every object key in v, at any depth.
func jsonKeys(v any, into map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			into[k] = true
			jsonKeys(e, into)
		}
	case []any:
		for _, e := range v {
			jsonKeys(e, into)
		}
	}
}

// TestJSONFieldsDocumented is issue 16 acceptance 6's second half: every
// field haul status --json, haul verify --json and haul report --json
// print — on a set that was fetched, damaged, found broken and repaired,
// so that errors, events, steps and sources are all present — is listed in
// the README's JSON outputs section, and each output has "schema": 1.
func TestJSONFieldsDocumented(t *testing.T) {
	documented := readmeJSONFields(t)
	_, _, dest, parts := trustSet(t, 64<<10)
	e2eFlipOnDisk(t, filepath.Join(dest, parts[1].name), 100)
	outputs := map[string]result{}
	outputs["status (broken)"] = runHaul(t, nil, "status", "--json", dest)
	wantCode(t, outputs["status (broken)"], 3)
	outputs["verify (broken)"] = runHaul(t, nil, "verify", "--json", dest)
	wantCode(t, outputs["verify (broken)"], 3)
	wantCode(t, runHaul(t, nil, "repair", "--progress", "none", dest), 0)
	outputs["status (done)"] = runHaul(t, nil, "status", "--json", dest)
	outputs["verify (done)"] = runHaul(t, nil, "verify", "--json", dest)
	outputs["report"] = runHaul(t, nil, "report", "--json", dest)
	for name, r := range outputs {
		var v map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, r.stdout)
		}
		if v["schema"] != float64(1) {
			t.Errorf("%s: schema %v, want 1", name, v["schema"])
		}
		keys := map[string]bool{}
		jsonKeys(v, keys)
		var undocumented []string
		for k := range keys {
			if !documented[k] {
				undocumented = append(undocumented, k)
			}
		}
		sort.Strings(undocumented)
		if len(undocumented) > 0 {
			t.Errorf("%s prints fields the README's JSON outputs section does not list: %v", name, undocumented)
		}
	}
	if !strings.Contains(outputs["status (broken)"].stdout, `"error"`) || !strings.Contains(outputs["report"].stdout, `"events"`) {
		t.Fatalf("the outputs checked lack the fields they were made to show:\n%s\n%s", outputs["status (broken)"].stdout, outputs["report"].stdout)
	}
}
