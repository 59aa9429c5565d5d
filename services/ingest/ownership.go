package ingest

import (
	"errors"
	"strings"

	"github.com/eventsync/eventsync/pkg/producer"
)

// coveringOwner returns the claim of another producer that covers
// category: on category itself or on one of its dot-prefixes (the owner of
// BILLING owns BILLING.SUB), the nearest first. mine reports whether a
// claim of id's covers it. Both may hold where claims overlap; then the
// other producer's claim refuses the write.
func (s *Service) coveringOwner(category, id string) (owner, owned string, mine bool) {
	for c := category; ; {
		switch o, ok := s.trust.Owners.Owner(c); {
		case ok && o != id:
			return o, c, mine
		case ok:
			mine = true
		}
		i := strings.LastIndexByte(c, '.')
		if i < 0 {
			return "", "", mine
		}
		c = c[:i]
	}
}

// subCategoryOwned reports whether a claim was refused because another
// producer owns a sub-category of the category asked for: the category is
// not that producer's, so writing it is allowed, but it cannot be claimed.
func subCategoryOwned(err error) bool {
	var oe *producer.OwnedError
	return errors.As(err, &oe)
}
