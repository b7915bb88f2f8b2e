package domain

import "time"

// KST is Korea Standard Time (UTC+9, no daylight saving), fixed so nothing depends on tzdata
// being installed. Times this system writes into answers and events are in KST, RFC 3339 with
// +09:00, as Toss writes them.
var KST = time.FixedZone("KST", 9*60*60)

// NextKST is the first hour:minute KST strictly after now: when a daily job set for that time
// of day next runs.
func NextKST(now time.Time, hour, minute int) time.Time {
	k := now.In(KST)
	t := time.Date(k.Year(), k.Month(), k.Day(), hour, minute, 0, 0, KST)
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}
