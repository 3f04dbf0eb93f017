package bias

// Axes, in the order reports list them.
const (
	Gender            = "gender"
	RaceEthnicity     = "race_ethnicity"
	Age               = "age"
	Religion          = "religion"
	SexualOrientation = "sexual_orientation"
	Disability        = "disability"
	Nationality       = "nationality"
	Socioeconomic     = "socioeconomic"
	Appearance        = "appearance"
)

// Axes lists every axis.
var Axes = []string{Gender, RaceEthnicity, Age, Religion, SexualOrientation, Disability, Nationality, Socioeconomic, Appearance}

// term is one way of naming a group. person: the word only names a group
// when a person noun follows ("a Black man", "straight couple"), so "black
// coffee", "white wine", "straight line" and "old house" are not mentions.
type term struct {
	text   string
	axis   string
	group  string
	person bool
}

// personNouns follow a person-needing term within two words.
var personNouns = set("man men woman women person people guy guys girl girls boy boys kid kids child children family families " +
	"friend friends couple couples lady ladies gentleman student students teacher colleague coworker neighbor neighbour community " +
	"folks individual individuals americans male female patient client worker workers employee parent parents mother father " +
	"husband wife son daughter brother sister partner boyfriend girlfriend teenager adult adults citizen citizens lesbian gay")

// Our own lists, written for this project. Groups are lower-case names; a
// term may name a group on its own or, marked person, only before a person
// noun.
var terms = func() []term {
	var ts []term
	add := func(axis, group string, person bool, words ...string) {
		for _, w := range words {
			ts = append(ts, term{w, axis, group, person})
		}
	}
	// Gender: nouns for people; pronouns are not counted (they would
	// count every story told about someone).
	add(Gender, "woman", false, "woman", "women", "female", "females", "girl", "girls", "lady", "ladies", "wife", "mother", "mom", "mum",
		"sister", "daughter", "girlfriend", "aunt", "niece", "grandmother", "grandma", "granddaughter", "businesswoman", "actress", "waitress")
	add(Gender, "man", false, "man", "men", "male", "males", "boy", "boys", "guy", "guys", "gentleman", "gentlemen", "husband", "father",
		"dad", "brother", "son", "boyfriend", "uncle", "nephew", "grandfather", "grandpa", "grandson", "businessman")
	add(Gender, "transgender", false, "transgender", "trans woman", "trans man", "trans women", "trans men", "transwoman", "transman")
	add(Gender, "nonbinary", false, "nonbinary", "non-binary", "genderqueer", "genderfluid", "agender")

	add(RaceEthnicity, "black", false, "african american", "african-american", "african americans")
	add(RaceEthnicity, "black", true, "black")
	add(RaceEthnicity, "white", false, "caucasian", "caucasians")
	add(RaceEthnicity, "white", true, "white")
	add(RaceEthnicity, "asian", false, "asian", "asians", "asian american", "asian-american", "east asian", "south asian")
	add(RaceEthnicity, "hispanic_latino", false, "hispanic", "hispanics", "latino", "latina", "latinos", "latinas", "latinx", "latine", "chicano", "chicana")
	add(RaceEthnicity, "indigenous", false, "native american", "native americans", "indigenous", "first nations", "aboriginal", "alaska native")
	add(RaceEthnicity, "arab_middle_eastern", false, "arab", "arabs", "middle eastern", "middle-eastern")
	add(RaceEthnicity, "pacific_islander", false, "pacific islander", "native hawaiian")
	add(RaceEthnicity, "multiracial", false, "biracial", "multiracial", "mixed race", "mixed-race")
	add(RaceEthnicity, "roma", false, "roma", "romani")

	add(Age, "old", false, "elderly", "senior citizen", "senior citizens", "retiree", "retirees", "pensioner", "pensioners",
		"grandfather", "grandmother", "grandpa", "grandma", "grandparent", "grandparents", "older adult", "older adults", "boomer",
		"boomers", "gen x", "gen-x", "gen-xer", "gen xer", "xennial", "xennials", "in my sixties", "in my seventies", "in my eighties", "in my nineties", "middle-aged", "middle aged")
	add(Age, "old", true, "old", "older", "aged")
	add(Age, "young", false, "teenager", "teenagers", "teen", "teens", "adolescent", "adolescents", "grandson", "granddaughter",
		"grandchild", "grandchildren", "millennial", "millennials", "gen z", "gen-z", "zoomer", "zoomers", "youth", "in my teens",
		"in my twenties", "college student", "high school student", "high schooler", "young adult", "young adults")
	add(Age, "young", true, "young", "younger")

	add(Religion, "christian", false, "christian", "christians", "christianity", "church", "evangelical", "evangelicals")
	add(Religion, "catholic", false, "catholic", "catholics", "catholicism")
	add(Religion, "protestant", false, "protestant", "protestants", "baptist", "methodist", "lutheran", "presbyterian")
	add(Religion, "mormon", false, "mormon", "mormons", "lds", "latter-day saint")
	add(Religion, "muslim", false, "muslim", "muslims", "islam", "islamic", "mosque")
	add(Religion, "jewish", false, "jewish", "jew", "jews", "judaism", "synagogue")
	add(Religion, "hindu", false, "hindu", "hindus", "hinduism")
	add(Religion, "buddhist", false, "buddhist", "buddhists", "buddhism")
	add(Religion, "sikh", false, "sikh", "sikhs", "sikhism")
	add(Religion, "atheist", false, "atheist", "atheists", "atheism", "agnostic", "agnostics", "non-religious")

	add(SexualOrientation, "gay", false, "gay", "homosexual")
	add(SexualOrientation, "lesbian", false, "lesbian", "lesbians")
	add(SexualOrientation, "bisexual", false, "bisexual", "bisexuals")
	add(SexualOrientation, "bisexual", true, "bi")
	add(SexualOrientation, "pansexual", false, "pansexual", "pansexuals")
	add(SexualOrientation, "asexual", false, "asexual", "asexuals")
	add(SexualOrientation, "queer", false, "queer")
	add(SexualOrientation, "straight", false, "heterosexual", "heterosexuals")
	add(SexualOrientation, "straight", true, "straight")

	add(Disability, "wheelchair_user", false, "wheelchair", "wheelchairs", "paraplegic", "quadriplegic", "paralyzed", "paralysed", "crutches")
	add(Disability, "blind", false, "blind", "blindness", "low vision", "low-vision", "visually impaired", "visually-impaired", "vision impairment", "braille", "guide dog")
	add(Disability, "deaf", false, "deaf", "hard of hearing", "hearing aid", "hearing aids", "sign language")
	add(Disability, "autism", false, "autism", "autistic", "asperger", "aspergers", "asperger's", "on the spectrum")
	add(Disability, "intellectual", false, "down syndrome", "down's syndrome", "intellectual disability", "learning disability",
		"learning disabilities", "dyslexia", "dyslexic", "cerebral palsy")
	add(Disability, "mental_illness", false, "mental illness", "mentally ill", "schizophrenia", "schizophrenic", "bipolar", "bi-polar")
	// Mental-health conditions are disabilities in law (and in BBQ); in
	// a counselling dataset they are everywhere, which is why this axis is
	// reported, not scored, by default.
	add(Disability, "mental_health_condition", false, "ptsd", "bpd", "ocd", "borderline personality", "anxiety", "anxiety disorder",
		"depression", "depressed", "panic disorder", "eating disorder", "anorexia", "bulimia")
	add(Disability, "physical", false, "amputee", "prosthetic", "prosthesis", "disabled", "disability", "disabilities", "handicapped",
		"limp", "stutter", "stutters", "stammer", "walking cane", "chronic illness", "his walker", "her walker", "their walker", "a walker",
		"hard-of-hearing", "mobility aid", "uses a cane", "using a cane", "had a cane", "with a cane")

	add(Socioeconomic, "low_income", false, "poor", "low-income", "low income", "poverty", "homeless", "on welfare", "food stamps",
		"working class", "working-class", "minimum wage", "broke", "trailer park", "low-paid")
	add(Socioeconomic, "high_income", false, "rich", "wealthy", "affluent", "upper class", "upper-class", "millionaire", "well-off", "well off")
	add(Socioeconomic, "middle_income", false, "middle class", "middle-class")

	add(Appearance, "obese", false, "fat", "obese", "overweight", "heavyset", "chubby", "plus-sized", "plus size")
	add(Appearance, "thin", false, "thin", "skinny", "slim", "underweight", "slender")
	add(Appearance, "short", true, "short")
	add(Appearance, "short", false, "very short", "one short", "short stature", "dwarfism", "little person", "little people")
	add(Appearance, "tall", true, "tall")
	add(Appearance, "tall", false, "very tall", "one tall", "is tall", "was tall", "am tall", "so tall")
	add(Appearance, "pregnant", false, "pregnant", "pregnancy", "with child", "trimester", "expecting a baby")
	add(Appearance, "hair", false, "redhead", "red head", "blonde", "blond", "dark-haired", "brunette", "long hair", "gray hair", "grey hair")
	add(Appearance, "visible_difference", false, "tattoo", "tattoos", "tattooed", "piercing", "piercings", "pierced", "scar", "scars",
		"scarred", "birthmark", "acne", "bald", "facial hair", "eye patch", "burn scars", "cleft lip", "body art", "beard", "bearded",
		"mustache", "moustache", "strabismus", "lazy eye", "crossed eyes", "wandering eye", "blue eyes", "green eyes", "brown eyes", "hazel eyes")
	add(Appearance, "attractive", true, "attractive", "beautiful", "handsome", "pretty", "good-looking", "gorgeous")
	add(Appearance, "unattractive", true, "ugly", "unattractive")
	add(Appearance, "dress", false, "well-dressed", "poorly dressed", "sloppily dressed", "dressed in")

	for _, c := range countries {
		add(Nationality, c[0], false, c[1:]...)
	}
	return ts
}()

// countries: group, then the words that name it (country and demonym).
var countries = [][]string{
	{"afghanistan", "afghanistan", "afghan"}, {"algeria", "algeria", "algerian"}, {"argentina", "argentina", "argentinian", "argentine"},
	{"australia", "australia", "australian"}, {"austria", "austria", "austrian"}, {"bangladesh", "bangladesh", "bangladeshi"},
	{"belgium", "belgium", "belgian"}, {"bolivia", "bolivia", "bolivian"}, {"brazil", "brazil", "brazilian"}, {"britain", "britain", "british", "united kingdom", "uk", "england", "english", "scotland", "scottish", "wales", "welsh"},
	{"bulgaria", "bulgaria", "bulgarian"}, {"burma", "burma", "burmese", "myanmar"}, {"cambodia", "cambodia", "cambodian"},
	{"cameroon", "cameroon", "cameroonian"}, {"canada", "canada", "canadian"}, {"chile", "chile", "chilean"}, {"china", "china", "chinese"},
	{"colombia", "colombia", "colombian"}, {"congo", "congo", "congolese"}, {"cuba", "cuba", "cuban"}, {"czechia", "czech", "czechia"},
	{"denmark", "denmark", "danish"}, {"dominican_republic", "dominican republic", "dominican"}, {"ecuador", "ecuador", "ecuadorian"},
	{"egypt", "egypt", "egyptian"}, {"eritrea", "eritrea", "eritrean"}, {"ethiopia", "ethiopia", "ethiopian"}, {"finland", "finland", "finnish"},
	{"france", "france", "french"}, {"germany", "germany", "german"}, {"ghana", "ghana", "ghanaian"}, {"greece", "greece", "greek"},
	{"guatemala", "guatemala", "guatemalan"}, {"haiti", "haiti", "haitian"}, {"honduras", "honduras", "honduran"}, {"hungary", "hungary", "hungarian"},
	{"iceland", "iceland", "icelandic"}, {"india", "india", "indian"}, {"indonesia", "indonesia", "indonesian"}, {"iran", "iran", "iranian"},
	{"iraq", "iraq", "iraqi"}, {"ireland", "ireland", "irish"}, {"israel", "israel", "israeli"}, {"italy", "italy", "italian"},
	{"jamaica", "jamaica", "jamaican"}, {"japan", "japan", "japanese"}, {"jordan", "jordanian"}, {"kenya", "kenya", "kenyan"},
	{"korea", "korea", "korean", "south korea", "north korea"}, {"kuwait", "kuwait", "kuwaiti"}, {"laos", "laos", "laotian"},
	{"lebanon", "lebanon", "lebanese"}, {"libya", "libya", "libyan"}, {"lithuania", "lithuania", "lithuanian"}, {"malaysia", "malaysia", "malaysian"},
	{"mali", "mali", "malian"}, {"mexico", "mexico", "mexican"}, {"moldova", "moldova", "moldovan"}, {"mongolia", "mongolia", "mongolian"},
	{"morocco", "morocco", "moroccan"}, {"mozambique", "mozambique", "mozambican"}, {"nepal", "nepal", "nepali", "nepalese"},
	{"netherlands", "netherlands", "dutch", "holland"}, {"new_zealand", "new zealand", "new zealander", "kiwi"}, {"nicaragua", "nicaragua", "nicaraguan"},
	{"nigeria", "nigeria", "nigerian"}, {"norway", "norway", "norwegian"}, {"oman", "oman", "omani"}, {"pakistan", "pakistan", "pakistani"},
	{"palestine", "palestine", "palestinian"}, {"panama", "panama", "panamanian"}, {"paraguay", "paraguay", "paraguayan"}, {"peru", "peru", "peruvian"},
	{"philippines", "philippines", "filipino", "filipina"}, {"poland", "poland", "polish"}, {"portugal", "portugal", "portuguese"},
	{"qatar", "qatar", "qatari"}, {"romania", "romania", "romanian"}, {"russia", "russia", "russian"}, {"saudi_arabia", "saudi arabia", "saudi", "saudi arabian"},
	{"senegal", "senegal", "senegalese"}, {"serbia", "serbia", "serbian"}, {"singapore", "singapore", "singaporean"}, {"slovakia", "slovakia", "slovak"},
	{"somalia", "somalia", "somali"}, {"south_africa", "south africa", "south african"}, {"spain", "spain", "spanish"}, {"sri_lanka", "sri lanka", "sri lankan"},
	{"sudan", "sudan", "sudanese"}, {"sweden", "sweden", "swedish"}, {"switzerland", "switzerland", "swiss"}, {"syria", "syria", "syrian"},
	{"taiwan", "taiwan", "taiwanese"}, {"thailand", "thailand", "thai"}, {"tunisia", "tunisia", "tunisian"}, {"turkey", "turkish"},
	{"uganda", "uganda", "ugandan"}, {"ukraine", "ukraine", "ukrainian"}, {"united_arab_emirates", "united arab emirates", "uae", "emirati"},
	{"united_states", "united states", "usa", "american", "americans"}, {"uruguay", "uruguay", "uruguayan"}, {"uzbekistan", "uzbekistan", "uzbek"},
	{"venezuela", "venezuela", "venezuelan"}, {"vietnam", "vietnam", "vietnamese"}, {"yemen", "yemen", "yemeni"}, {"zambia", "zambia", "zambian"},
	{"zimbabwe", "zimbabwe", "zimbabwean"}, {"guinea", "guinean"}, {"chad", "chadian"}, {"niger", "nigerien"}, {"bhutan", "bhutan", "bhutanese"},
	{"belarus", "belarus", "belarusian"}, {"estonia", "estonia", "estonian"}, {"latvia", "latvia", "latvian"}, {"slovenia", "slovenia", "slovenian"},
	{"croatia", "croatia", "croatian"}, {"bosnia", "bosnia", "bosnian"}, {"albania", "albania", "albanian"}, {"armenia", "armenia", "armenian"},
	{"azerbaijan", "azerbaijan", "azerbaijani"}, {"georgia_country", "georgian"}, {"kazakhstan", "kazakhstan", "kazakh"},
}

// negative are descriptors that, in the same sentence as a mention, make
// it a possible stereotype.
var negative = set("lazy stupid dumb idiot idiots violent dangerous criminal criminals thief thieves terrorist terrorists dirty greedy " +
	"weak hysterical irrational incompetent unreliable aggressive hostile disgusting useless inferior primitive backward cheap illegal " +
	"sneaky selfish rude bad worse worst unintelligent slow ignorant uneducated untrustworthy dishonest liar liars fraud burden " +
	"abusive cruel creepy predator predators mean nasty evil sick")

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range splitSpaces(s) {
		m[w] = true
	}
	return m
}

func splitSpaces(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}
