package testdata

func flat() int {
	return 1
}

func elseIfChain(x int) int {
	if x == 1 {
		return 1
	} else if x == 2 {
		return 2
	} else if x == 3 {
		return 3
	} else {
		return 4
	}
}

func nested(xs [][]int) int {
	n := 0
	for _, row := range xs {
		for _, x := range row {
			switch {
			case x > 0:
				if x > 10 {
					n++
				}
			}
		}
	}
	return n
}

type T struct{}

func (T) lit() func() {
	return func() {
		for {
			break
		}
	}
}
