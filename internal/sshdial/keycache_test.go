package sshdial

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// writeEncryptedKey writes a new ed25519 key, encrypted with pass, to
// path, and returns its public key.
func writeEncryptedKey(t *testing.T, path, pass string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "haul-test", []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// login is what one dial does with an encrypted key file: load it, take
// the shared key from the cache, and sign when the server asks. It
// returns the signature's error, and checks a signature against pub.
func login(t *testing.T, keys *keyCache, path string, pub ssh.PublicKey, ask func(string) ([]byte, error)) error {
	t.Helper()
	_, lk, err := loadPrivateKey(path)
	if err != nil || lk == nil {
		t.Errorf("load %s: %v, locked %v", path, err, lk != nil)
		return err
	}
	var waiting atomic.Int32
	s := keys.share(lk).signer(ask, func(w bool) {
		if w {
			waiting.Add(1)
		} else {
			waiting.Add(-1)
		}
	}, nil)
	if s == nil {
		return errors.New("no signer")
	}
	data := []byte("session data")
	sig, err := s.Sign(rand.Reader, data)
	if waiting.Load() != 0 {
		t.Errorf("the handshake clock stays paused after signing")
	}
	if err != nil {
		return err
	}
	if err := pub.Verify(data, sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	return nil
}

// TestKeyCache: logins that share a cache unlock a key once, however
// many run at the same time; a failure is not kept, a rewritten file is a
// new key, and without a cache (or after forget) every login asks.
func TestKeyCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id_enc")
	const pass = "cache passphrase"
	pub := writeEncryptedKey(t, path, pass)
	var asked atomic.Int32
	right := func(string) ([]byte, error) {
		asked.Add(1)
		// Slow, as a person is: the other logins wait for this answer.
		time.Sleep(20 * time.Millisecond)
		return []byte(pass), nil
	}

	t.Run("concurrent logins ask once", func(t *testing.T) {
		asked.Store(0)
		keys := &keyCache{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := login(t, keys, path, pub, right); err != nil {
					t.Errorf("login: %v", err)
				}
			}()
		}
		wg.Wait()
		if n := asked.Load(); n != 1 {
			t.Errorf("asked %d times for 8 logins sharing a cache, want once", n)
		}
	})

	t.Run("a failure is not kept", func(t *testing.T) {
		asked.Store(0)
		keys := &keyCache{}
		gone := errors.New("no terminal")
		err := login(t, keys, path, pub, func(string) ([]byte, error) { return nil, gone })
		if !errors.Is(err, gone) {
			t.Fatalf("%v, want the prompt's error", err)
		}
		var tries atomic.Int32
		err = login(t, keys, path, pub, func(string) ([]byte, error) {
			tries.Add(1)
			return []byte("typo"), nil
		})
		if err == nil || tries.Load() != sshPassphraseTries {
			t.Fatalf("wrong passphrases: %v after %d tries", err, tries.Load())
		}
		for range 3 {
			if err := login(t, keys, path, pub, right); err != nil {
				t.Fatalf("after failures: %v", err)
			}
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("asked %d times after the failures, want once", n)
		}
	})

	t.Run("rewritten file is a new key", func(t *testing.T) {
		asked.Store(0)
		keys := &keyCache{}
		p := filepath.Join(dir, "id_rewritten")
		first := writeEncryptedKey(t, p, pass)
		if err := login(t, keys, p, first, right); err != nil {
			t.Fatal(err)
		}
		second := writeEncryptedKey(t, p, pass)
		if err := login(t, keys, p, second, right); err != nil {
			t.Fatal(err)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("asked %d times for two keys in one file, want 2", n)
		}
	})

	t.Run("no cache or forgotten", func(t *testing.T) {
		asked.Store(0)
		for range 2 {
			if err := login(t, nil, path, pub, right); err != nil {
				t.Fatal(err)
			}
		}
		keys := &keyCache{}
		if err := login(t, keys, path, pub, right); err != nil {
			t.Fatal(err)
		}
		keys.forget()
		if err := login(t, keys, path, pub, right); err != nil {
			t.Fatal(err)
		}
		if n := asked.Load(); n != 4 {
			t.Errorf("asked %d times, want 4 (each login without a cache, and after forget)", n)
		}
	})
}
