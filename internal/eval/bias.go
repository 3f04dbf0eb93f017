package eval

// BiasRow is a gold row of bias/bbq-contexts.
type BiasRow struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Category string   `json:"category"`
	Groups   []string `json:"groups"`
}

// BiasPrediction is one line of `dsctl analyze bias` output.
type BiasPrediction struct {
	ID       string `json:"id"`
	Mentions []struct {
		Axis  string `json:"axis"`
		Group string `json:"group"`
	} `json:"mentions"`
}

// ReadBiasFile reads a bias gold file.
func ReadBiasFile(path string) ([]BiasRow, error) { return readJSONLFile[BiasRow](path) }

// ReadBiasPredictions reads analyze bias output.
func ReadBiasPredictions(path string) ([]BiasPrediction, error) {
	return readJSONLFile[BiasPrediction](path)
}

// BBQAxis maps a BBQ category to our axis.
var BBQAxis = map[string]string{"Age": "age", "Disability_status": "disability", "Nationality": "nationality",
	"Physical_appearance": "appearance", "Religion": "religion", "Sexual_orientation": "sexual_orientation",
	"Gender_identity": "gender", "Race_ethnicity": "race_ethnicity", "SES": "socioeconomic"}

// AxisFound counts, per BBQ category, the rows and those in which a
// mention of the category's axis was found.
func AxisFound(gold []BiasRow, pred []BiasPrediction) (rows, found map[string]int) {
	byID := map[string]BiasPrediction{}
	for _, p := range pred {
		byID[p.ID] = p
	}
	rows, found = map[string]int{}, map[string]int{}
	for _, g := range gold {
		rows[g.Category]++
		for _, m := range byID[g.ID].Mentions {
			if m.Axis == BBQAxis[g.Category] {
				found[g.Category]++
				break
			}
		}
	}
	return rows, found
}
