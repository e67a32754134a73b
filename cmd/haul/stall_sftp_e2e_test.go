package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// stallingSFTP is an SSH server on 127.0.0.1 that serves a directory over
// SFTP (read-only) and runs no command but a hash command that never
// answers; it stops answering one kind of request: "stat", "list" or
// "hash". Its channels stay open and its keepalive replies keep coming,
// so only a bound on the request itself can end the wait.
type stallingSFTP struct {
	addr       string
	knownHosts string // a known_hosts file that trusts it
	stall      string
	release    chan struct{}
}

func startStallingSFTP(t *testing.T, stall string) *stallingSFTP {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(signer)
	s := &stallingSFTP{stall: stall, release: make(chan struct{})}
	s.addr = acceptConns(t, func(c net.Conn) { s.serve(c, cfg) })
	// Cleanups run last first: the stalled requests are let go before
	// the connections close and the server is waited for.
	t.Cleanup(func() { close(s.release) })
	s.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	host, port, _ := net.SplitHostPort(s.addr)
	line := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(s.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stallingSFTP) serve(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go func() {
		for r := range reqs { // keepalives: the connection itself stays alive
			if r.WantReply {
				_ = r.Reply(true, nil)
			}
		}
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, creqs)
	}
}

func (s *stallingSFTP) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		switch {
		case r.Type == "subsystem" && len(r.Payload) > 4 && string(r.Payload[4:]) == "sftp":
			_ = r.Reply(true, nil)
			h := sftp.Handlers{FileGet: s, FilePut: s, FileCmd: s, FileList: s}
			srv := sftp.NewRequestServer(ch, h)
			go func() {
				<-s.release
				srv.Close()
			}()
			_ = srv.Serve()
			return
		case r.Type == "exec" && s.stall == "hash":
			_ = r.Reply(true, nil)
			<-s.release // the command runs and never says a word
			return
		default:
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}
}

// hold stalls the request when it is the kind this server stalls.
func (s *stallingSFTP) hold(kind string) {
	if s.stall == kind {
		<-s.release
	}
}

func (s *stallingSFTP) Fileread(r *sftp.Request) (io.ReaderAt, error) { return os.Open(r.Filepath) }

func (s *stallingSFTP) Filewrite(*sftp.Request) (io.WriterAt, error) { return nil, os.ErrPermission }

func (s *stallingSFTP) Filecmd(*sftp.Request) error { return os.ErrPermission }

func (s *stallingSFTP) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		s.hold("list")
		ents, err := os.ReadDir(r.Filepath)
		if err != nil {
			return nil, err
		}
		var infos listerAt
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			infos = append(infos, fi)
		}
		return infos, nil
	case "Stat":
		s.hold("stat")
		fi, err := os.Stat(r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, errors.New("unsupported")
}

// listerAt hands out FileInfos for pkg/sftp's request server.
type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
