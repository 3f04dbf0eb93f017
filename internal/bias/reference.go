package bias

// PopulationReference is the default reference of each scored axis: the
// shares of the groups a text names as such in the population of the
// United States (most of the English counselling data this service sees
// comes from there). A request's processing.bias.reference replaces it
// per axis. Groups a text rarely names as such (straight, middle-aged,
// "nothing in particular" for religion) are not in it, so the default
// compares shares among the marked groups; the shares are normalised over
// the groups listed. Sources, with the figures taken:
//
//   - gender: U.S. Census Bureau, 2020 Census Demographic and Housing
//     Characteristics File: 50.5% female, 49.5% male; Williams Institute,
//     "How Many Adults and Youth Identify as Transgender in the United
//     States?" (2022): 0.6% of people aged 13 and over; Williams Institute,
//     "Nonbinary LGBTQ Adults in the United States" (2021): about 1.2
//     million adults, 0.5%.
//   - age: 2020 Census DHC: under 25 about 31%, 65 and over 16.8%
//     (middle age is unmarked and left out).
//   - race and ethnicity: 2020 Census redistricting data (P.L. 94-171),
//     Hispanic or Latino 18.7%, and not Hispanic or Latino, one race: White
//     57.8%, Black 12.1%, Asian 5.9%, American Indian and Alaska Native
//     0.7%, Native Hawaiian and Pacific Islander 0.2%; two or more races
//     4.1%. Middle Eastern and North African: about 1.1% (3.5 million,
//     American Community Survey ancestry estimates, as reported by the
//     Census Bureau's 2015 National Content Test). Roma: about 0.3% (the
//     commonly cited estimate of up to one million).
//   - religion: Pew Research Center, Religious Landscape Study 2023–24:
//     Protestant 40% and other Christian 1% (pooled with unspecified
//     "Christian" mentions), Catholic 19%, Latter-day Saint 2%, Jewish 2%,
//     Muslim 1%, Hindu 1%, Buddhist 1%, Sikh about 0.2%, atheist 5% and
//     agnostic 6% ("nothing in particular", 19%, is unmarked).
//   - sexual orientation: Gallup, "LGBTQ+ Identification in U.S." (2024):
//     bisexual 5.2%, gay 1.8%, lesbian 1.4%, and about 0.7% other
//     orientations (pansexual, asexual, queer; split here 0.3/0.2/0.2);
//     straight is unmarked.
var PopulationReference = map[string]map[string]float64{
	Gender: {"woman": 0.505, "man": 0.495, "transgender": 0.006, "nonbinary": 0.005},
	Age:    {"young": 0.31, "old": 0.168},
	RaceEthnicity: {"white": 0.578, "hispanic_latino": 0.187, "black": 0.121, "asian": 0.059, "indigenous": 0.007,
		"pacific_islander": 0.002, "multiracial": 0.041, "arab_middle_eastern": 0.011, "roma": 0.003},
	Religion: {"christian": 0.41, "catholic": 0.19, "mormon": 0.02, "jewish": 0.02, "muslim": 0.01,
		"hindu": 0.01, "buddhist": 0.01, "sikh": 0.002, "atheist": 0.11},
	SexualOrientation: {"bisexual": 0.052, "gay": 0.018, "lesbian": 0.014, "pansexual": 0.003, "asexual": 0.002, "queer": 0.002},
}

// pooled names, per axis, the groups the population reference counts
// together: a text's "church" or "Christian" is as likely a Protestant's
// as a "Baptist" is, and surveys report Protestants as one share.
var pooled = map[string]map[string]string{Religion: {"protestant": "christian"}}
