package s3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/haul-dev/haul/fetch/source"
)

// awsSettings is what the AWS tools would use for S3, resolved the way the
// AWS CLI does (a flag beats the environment, which beats the profile in
// the config file), and where each value came from, for messages.
type awsSettings struct {
	profile string
	// configFile and credsFile are the shared files looked at ("" when
	// neither the environment names one nor HOME is set).
	configFile, credsFile string
	// noHome is set when HOME is unknown, so ~/.aws could not be read.
	noHome bool

	endpoint     string // with its scheme; "" = AWS itself
	endpointFrom string // "--endpoint", "AWS_ENDPOINT_URL", "endpoint_url in [profile x] of FILE" …
	region       string
}

// awsEnv is the environment lookup; tests give their own.
type awsEnv func(string) string

// resolveAWS reads AWS_CONFIG_FILE (or ~/.aws/config) for the profile
// AWS_PROFILE names (default "default") and combines it with opts and the
// environment. Endpoints, in the AWS CLI's order: --endpoint,
// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the s3 entry of the profile's
// services section, the profile's endpoint_url; the four configured ones
// are ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (or the profile's
// ignore_configured_endpoint_urls) is true. Region: --region, AWS_REGION,
// AWS_DEFAULT_REGION, the profile's region.
func resolveAWS(opts source.S3Options, env awsEnv) (*awsSettings, error) {
	s := &awsSettings{profile: firstOf(env("AWS_PROFILE"), env("AWS_DEFAULT_PROFILE"), "default")}
	s.configFile, s.credsFile = env("AWS_CONFIG_FILE"), env("AWS_SHARED_CREDENTIALS_FILE")
	if home := firstOf(env("HOME"), env("USERPROFILE")); home != "" {
		s.configFile = firstOf(s.configFile, filepath.Join(home, ".aws", "config"))
		s.credsFile = firstOf(s.credsFile, filepath.Join(home, ".aws", "credentials"))
	} else if s.configFile == "" || s.credsFile == "" {
		s.noHome = true
	}
	var prof, services map[string]string
	section := ""
	if s.configFile != "" {
		cfg, err := readINI(s.configFile)
		if err != nil {
			return nil, err
		}
		section, prof = cfg.profile(s.profile)
		if name := prof["services"]; name != "" {
			services = cfg["services "+name]
		}
	}
	if prof == nil && env("AWS_PROFILE") != "" && !s.inCredentials() {
		return nil, source.Also(fmt.Errorf("AWS_PROFILE=%s: no such profile in %s or %s (add [profile %s], or unset AWS_PROFILE)",
			s.profile, orUnset(s.configFile), orUnset(s.credsFile), s.profile), source.ErrBadSource)
	}
	where := fmt.Sprintf("[%s] of %s", section, s.configFile)
	s.endpoint, s.endpointFrom = opts.Endpoint, "--endpoint"
	ignore := strings.EqualFold(firstOf(env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), prof["ignore_configured_endpoint_urls"]), "true")
	if s.endpoint == "" && !ignore {
		for _, c := range []struct{ v, from string }{
			{env("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"},
			{env("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"},
			{services["s3.endpoint_url"], fmt.Sprintf("s3 endpoint_url in [services %s] of %s", prof["services"], s.configFile)},
			{prof["endpoint_url"], "endpoint_url in " + where},
		} {
			if c.v != "" {
				s.endpoint, s.endpointFrom = c.v, c.from
				break
			}
		}
	}
	if s.endpoint != "" && !strings.Contains(s.endpoint, "://") {
		return nil, source.Also(fmt.Errorf("%s %q needs a scheme: http://%s or https://%s", s.endpointFrom, s.endpoint, s.endpoint, s.endpoint), source.ErrBadSource)
	}
	s.region = firstOf(opts.Region, env("AWS_REGION"), env("AWS_DEFAULT_REGION"), prof["region"])
	return s, nil
}

// inCredentials reports whether the shared credentials file has a section
// for the profile (where the AWS CLI accepts a profile, too).
func (s *awsSettings) inCredentials() bool {
	if s.credsFile == "" {
		return false
	}
	f, err := readINI(s.credsFile)
	return err == nil && f[s.profile] != nil
}

// looked says where credentials were looked for, for the message that
// none were found.
func (s *awsSettings) looked(imds bool) string {
	where := []string{"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"}
	var files []string
	for _, f := range []string{s.credsFile, s.configFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	if len(files) > 0 {
		where = append(where, fmt.Sprintf("profile %q in %s", s.profile, strings.Join(files, " and ")))
	}
	if s.noHome {
		where = append(where, "not ~/.aws: HOME is not set (under systemd: User= with a home, AWS_SHARED_CREDENTIALS_FILE=, or the keys in an EnvironmentFile=)")
	}
	if imds {
		where = append(where, "the instance metadata service")
	}
	return strings.Join(where, ", ")
}

func orUnset(path string) string {
	if path == "" {
		return "~/.aws (unknown)"
	}
	return path
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// iniFile is an AWS config or credentials file: section → key → value. A
// nested block (`s3 =` followed by indented `endpoint_url = …` lines, as
// in services sections) is stored as "s3.endpoint_url".
type iniFile map[string]map[string]string

// profile finds the profile's section of a config file: [profile NAME],
// and for the default profile [default] too; [NAME] is accepted as the
// credentials file's form.
func (f iniFile) profile(name string) (string, map[string]string) {
	for _, sec := range []string{"profile " + name, name} {
		if m, ok := f[sec]; ok {
			return sec, m
		}
	}
	return "profile " + name, nil
}

// readINI reads an AWS config file; a missing file is empty.
func readINI(path string) (iniFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return iniFile{}, nil
	}
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("AWS config %s: %w (fix its permissions, or point AWS_CONFIG_FILE elsewhere): %w", path, err, source.ErrBadSource))
	}
	f, err := parseINI(data)
	if err != nil {
		return nil, source.Permanent(fmt.Errorf("AWS config %s: %w: %w", path, err, source.ErrBadSource))
	}
	return f, nil
}

// parseINI parses the INI dialect of the AWS tools: [section] headers,
// key = value, full-line # and ; comments, and a key with an empty value
// opening a block of indented key = value lines.
func parseINI(data []byte) (iniFile, error) {
	f := iniFile{}
	var sec map[string]string
	block := "" // the key whose indented block we are in
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: %q is not a [section]", n, line)
			}
			name := strings.Join(strings.Fields(line[1:len(line)-1]), " ")
			if f[name] == nil {
				f[name] = map[string]string{}
			}
			sec, block = f[name], ""
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || sec == nil {
			if indented && block != "" {
				continue // a continuation line of a multi-line value we do not use
			}
			return nil, fmt.Errorf("line %d: want key = value inside a [section]", n)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case indented && block != "":
			sec[block+"."+k] = v
		case v == "":
			block = k
			sec[k] = ""
		default:
			block = ""
			sec[k] = v
		}
	}
	return f, sc.Err()
}
