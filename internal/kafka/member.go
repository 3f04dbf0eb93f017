package kafka

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Member follows a service's consumer group clients for readiness: the
// service is ready when each has joined its group (it holds a generation,
// with or without partitions: a spare instance is ready to take some over).
type Member struct {
	mu      sync.Mutex
	clients map[string]*kgo.Client
}

// NewMember makes an empty set.
func NewMember() *Member { return &Member{clients: map[string]*kgo.Client{}} }

// Set records the current client of a group (a new session replaces the
// old one; nil: the service stopped consuming). A nil Member ignores it.
func (m *Member) Set(group string, cl *kgo.Client) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cl == nil {
		delete(m.clients, group)
		return
	}
	m.clients[group] = cl
}

// Check is nil when every group client has joined its group.
func (m *Member) Check(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.clients) == 0 {
		return errors.New("no consumer group client yet")
	}
	for group, cl := range m.clients {
		if _, gen := cl.GroupMetadata(); gen < 0 {
			return errors.New("not yet a member of consumer group " + group)
		}
	}
	return nil
}
