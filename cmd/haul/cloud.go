package main

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/pflag"

	"github.com/haul-dev/haul/internal/job"
	"github.com/haul-dev/haul/restore/bitrixcloud"
)

// cloudOpts are the flags of the Bitrix cloud-files step (restore, run).
type cloudOpts struct {
	hosts []string
	skip  bool
}

// cdnList is --bitrix-cdn: repeatable, and each value may be a comma
// list; every URL is checked when it is read.
type cdnList struct{ p *[]string }

func (v cdnList) String() string { return strings.Join(*v.p, ",") }
func (v cdnList) Type() string   { return "URL" }
func (v cdnList) Set(s string) error {
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if _, err := bitrixcloud.ParseHosts([]string{u}); err != nil {
			return err
		}
		*v.p = append(*v.p, u)
	}
	return nil
}

// addCloud: the files a Bitrix site keeps in the Bitrix cloud, listed in
// its bitrix/restore_cloud.txt, downloaded after the restore.
func (o *opts) addCloud(fs *pflag.FlagSet) {
	fs.Var(cdnList{&o.cloud.hosts}, "bitrix-cdn", "download the files of the site's bitrix/restore_cloud.txt from this host instead of the Bitrix CDN (repeatable, or a comma list; tried in order)")
	fs.BoolVar(&o.cloud.skip, "no-cloud", false, "do not download the files of the site's bitrix/restore_cloud.txt")
}

// cloud is the cloud-files step into the restored tree, unless
// --no-cloud; it uses the transfer flags of the command (their defaults
// for restore).
func (s *session) cloud(ctx context.Context, o *opts) error {
	if o.into == "" {
		return nil
	}
	if o.cloud.skip {
		if list := bitrixcloud.Find(o.into); list != "" {
			s.rep.logf("cloud: --no-cloud: the files %s lists are not downloaded", list)
		}
		return nil
	}
	fo, err := o.fetchOptions(nil, "")
	if err != nil {
		return err
	}
	return s.job.Cloud(ctx, o.into, o.cloud.hosts, fo)
}

// afterRestore runs the steps that follow the files: the cloud files,
// then the database. Files missing at the CDN (exit 3) do not keep the
// database from being imported; the run still ends with them.
func (s *session) afterRestore(ctx context.Context, o *opts) error {
	cerr := s.cloud(ctx, o)
	if cerr != nil && !errors.Is(cerr, bitrixcloud.ErrMissing) {
		return cerr
	}
	if err := s.db(ctx, o); err != nil {
		return err
	}
	if cerr != nil && job.ExitCode(cerr) == 3 {
		return cerr
	}
	return nil
}
