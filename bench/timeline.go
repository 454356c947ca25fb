package main

import (
	"time"
)

// timeline is gopqr's run through a scenario, bucket by bucket, with the
// rotations and gopqr's events.
type timeline struct {
	Scenario  string    `json:"scenario"`
	Contender string    `json:"contender"`
	Workers   int       `json:"workers"`
	Lifetime  float64   `json:"lifetime_ms"`
	Delay     float64   `json:"publish_delay_s"`
	Width     float64   `json:"bucket_ms"`
	Buckets   []bucket  `json:"buckets"`
	Evictions []int     `json:"evictions"` // per bucket, from the log hook
	Connects  []int     `json:"connects"`  // per bucket, from Stats polls
	Changed   []float64 `json:"rotations_s"`
	Published []float64 `json:"published_s"`
	Marks     []markAt  `json:"events"`
}

// markAt is an event in seconds from the start of the run.
type markAt struct {
	Kind string  `json:"kind"`
	At   float64 `json:"t_s"`
}

// timeline builds the timeline of a gopqr trial, or nil for a baseline.
func (t *trial) timeline(rt rotationTimes) *timeline {
	if t.conn == nil {
		return nil
	}
	n := int(t.sc.duration() / bucketWidth)
	rec := t.te.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tl := &timeline{
		Scenario: t.sc.Name, Contender: t.c.name, Workers: t.te.s.LoadWorkers,
		Lifetime: ms(t.te.s.Lifetime), Delay: t.te.s.PublishDelay.Seconds(),
		Width: ms(bucketWidth), Buckets: bucketize(t.load.samples(), bucketWidth, n),
		Evictions: countPerBucket(rec.evictions, bucketWidth, n),
		Connects:  connectsPerBucket(rec.polls, bucketWidth, n),
		Changed:   seconds(rt.Changed), Published: seconds(rt.Published),
	}
	for _, m := range rec.marks {
		tl.Marks = append(tl.Marks, markAt{Kind: m.Kind, At: m.At.Seconds()})
	}
	return tl
}

// seconds converts durations to seconds.
func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// connectsPerBucket turns successive counter polls into the connections
// opened per bucket: the growth between two polls goes to the bucket in
// which the earlier poll was taken.
func connectsPerBucket(polls []poll, width time.Duration, n int) []int {
	out := make([]int, n)
	for k := 1; k < len(polls); k++ {
		i := int(polls[k-1].At / width)
		if i >= 0 && i < n {
			out[i] += int(polls[k].Connects - polls[k-1].Connects)
		}
	}
	return out
}
