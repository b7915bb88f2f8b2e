package domain

import "time"

// KST is Korea Standard Time (UTC+9, no daylight saving), fixed so nothing depends on tzdata
// being installed. Times this system writes into answers and events are in KST, RFC 3339 with
// +09:00, as Toss writes them.
var KST = time.FixedZone("KST", 9*60*60)
