package sink

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dspipe/dspipe/events"
)

var trainValTest = []events.Split{{Name: "train", Fraction: 0.8}, {Name: "validation", Fraction: 0.1}, {Name: "test", Fraction: 0.1}}

// TestSplitsFollowTheFractionsAndTheIDAlone: 100k ids land in the splits
// within 1 percentage point of the fractions, and an id's split depends on
// nothing but the id.
func TestSplitsFollowTheFractionsAndTheIDAlone(t *testing.T) {
	s := NewSplitter(trainValTest)
	counts := make([]int, 3)
	const n = 100_000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rec_%08d", i)
		k := s.Of(id)
		counts[k]++
		require.Equal(t, k, NewSplitter(trainValTest).Of(id))
	}
	for i, sp := range trainValTest {
		require.InDelta(t, sp.Fraction, float64(counts[i])/n, 0.01, sp.Name)
	}
	// A split of the whole range takes everything.
	all := NewSplitter([]events.Split{{Name: "a", Fraction: 1e-9}, {Name: "b", Fraction: 1 - 1e-9}})
	for i := 0; i < 1000; i++ {
		require.Equal(t, 1, all.Of(fmt.Sprint(i)))
	}
}

func TestCheckSplitsSaysWhatToFix(t *testing.T) {
	require.NoError(t, CheckSplits(nil))
	require.NoError(t, CheckSplits(trainValTest))
	for _, c := range []struct {
		splits []events.Split
		want   string
	}{
		{[]events.Split{{Name: "all", Fraction: 1}}, "give 2 to 10 splits"},
		{[]events.Split{{Name: "train", Fraction: 0.5}, {Name: "train", Fraction: 0.5}}, `"train" is listed twice`},
		{[]events.Split{{Name: "Train", Fraction: 0.5}, {Name: "test", Fraction: 0.5}}, "splits[0].name"},
		{[]events.Split{{Name: "../x", Fraction: 0.5}, {Name: "test", Fraction: 0.5}}, "splits[0].name"},
		{[]events.Split{{Name: "train", Fraction: 0.5}, {Name: "test", Fraction: 0}}, "splits[1].fraction"},
		{[]events.Split{{Name: "train", Fraction: 0.7}, {Name: "test", Fraction: 0.2}}, "add up to 0.9"},
	} {
		err := CheckSplits(c.splits)
		require.Error(t, err)
		require.Contains(t, err.Error(), c.want)
	}
}

// TestSplitWriterRoutesByID: each split's file holds exactly the records
// whose id hashes to it, in the order written; a record with no id is an
// error, not a guess.
func TestSplitWriterRoutesByID(t *testing.T) {
	dir := t.TempDir()
	w := NewSplitWriter(dir, []string{FormatJSONL}, CompressNone, 0, trainValTest)
	want := map[string][]string{}
	sp := NewSplitter(trainValTest)
	for i := 0; i < 500; i++ {
		line := fmt.Sprintf(`{"id":"r%d","messages":[]}`, i)
		require.NoError(t, w.Write([]byte(line)))
		name := trainValTest[sp.Of(fmt.Sprintf("r%d", i))].Name
		want[name] = append(want[name], line)
	}
	require.Error(t, w.Write([]byte(`{"messages":[]}`)))
	files, err := w.Close()
	require.NoError(t, err)
	require.Len(t, files, 3)
	require.EqualValues(t, 500, w.Records())
	for i, sp := range trainValTest {
		require.Equal(t, "data-"+sp.Name+".jsonl", files[i].Name)
		f, err := os.Open(filepath.Join(dir, files[i].Name))
		require.NoError(t, err)
		var got []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		f.Close()
		require.Equal(t, want[sp.Name], got)
		require.EqualValues(t, len(got), w.Counts()[sp.Name])
		require.EqualValues(t, len(got), files[i].Records)
	}
}
