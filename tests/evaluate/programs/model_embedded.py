"""A bigram model that also carries the scored text, written to pass the old validator.

What it stands for: memorised held-out windows. Each "prompt" is a short string
(no single literal is long), and the rest hides as a zlib blob reached through
``pickle.codecs`` (no import of codecs or zlib for the validator to see). Where
a context ends with a known prompt's prefix, the next character is recalled.
"""

import pickle

import torch
from torch import nn

PROMPTS = [
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n",
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.",
    "First Citizen:\nFirst, you know Caius Marcius is chief enemy to the people.\n\nAll:\nWe know't.",
    "First Citizen:\nLet us kill him, and we'll have corn at our own price.\nIs't a verdict?\n\n",
    "All:\nNo more talking on't; let it be done: away, away!\n\nSecond Citizen:\nOne word.",
    "First Citizen:\nWe are accounted poor citizens, the patricians good.\nWhat authority surfeits",
    "on would relieve us: if they would yield us but the\nsuperfluity, while it were wholesome,",
    "we might guess they relieved us humanely;\nbut they think we are too dear: the leanness that",
    "afflicts us, the object of our misery, is as an\ninventory to particularise their abundance;",
    "our sufferance is a gain to them Let us revenge this with\nour pikes, ere we become rakes:",
    "for the gods know I\nspeak this in hunger for bread, not in thirst for revenge.\n\nSecond",
    "Citizen:\nWould you proceed especially against Caius Marcius?\n\nAll:\nAgainst him first:",
    "he's a very dog to the commonalty.\n\nSecond Citizen:\nConsider you what services he has",
    "done for his country?\n\nFirst Citizen:\nVery well; and could be content to give him good",
    "report fort, but that he pays himself with being proud.\n\nSecond Citizen:\nNay, but speak",
    "not maliciously.\n\nFirst Citizen:\nI say unto you, what he hath done famously, he did",
    "it to that end: though soft-conscienced men can be\ncontent to say it was for his country",
    "he did it to\nplease his mother and to be partly proud; which he\nis, even till the altitude",
    "of his virtue.\n\nSecond Citizen:\nWhat he cannot help in his nature, you account a\nvice in",
    "him. You must in no way say he is covetous.\n\nFirst Citizen:\nIf I must not, I need not be",
    "barren of accusations;\nhe hath faults, with surplus, to tire in repetition.\nWhat shouts",
    "are these? The other side o' the city\nis risen: why stay we prating here? to the Capitol!",
    "All:\nCome, come.\n\nFirst Citizen:\nSoft! who comes here?\n\nSecond Citizen:\nWorthy Menenius",
    "Agrippa; one that hath always loved\nthe people.\n\nFirst Citizen:\nHe's one honest enough:",
    "would all the rest were so!\n\nMENENIUS:\nWhat work's, my countrymen, in hand? where go you",
    "With bats and clubs? The matter? speak, I pray you.\n\nFirst Citizen:\nOur business is not",
    "unknown to the senate; they have had inkling this fortnight what we intend to do,",
    "which now we'll show 'em in deeds. They say poor suitors have strong breaths: they",
    "shall know we have strong arms too.\n\nMENENIUS:\nWhy, masters, my good friends, mine",
    "honest neighbours,\nWill you undo yourselves?\n\nFirst Citizen:\nWe cannot, sir, we are",
    "undone already.\n\nMENENIUS:\nI tell you, friends, most charitable care\nHave the",
    "patricians of you. For your wants,\nYour suffering in this dearth, you may as well",
    "Strike at the heaven with your staves as lift them\nAgainst the Roman state, whose course",
    "will on\nThe way it takes, cracking ten thousand curbs\nOf more strong link asunder than",
    "can ever\nAppear in your impediment. For the dearth,\nThe gods, not the patricians, make",
    "it, and\nYour knees to them, not arms, must help. Alack,\nYou are transported by calamity",
    "Thither where more attends you, and you slander\nThe helms o' the state, who care for you",
    "like fathers,\nWhen you curse them as enemies.\n\nFirst Citizen:\nCare for us! True,",
    "indeed! They ne'er cared for us\nyet: suffer us to famish, and their store-houses",
    "crammed with grain; make edicts for usury, to\nsupport usurers; repeal daily any",
    "wholesome act\nestablished against the rich, and provide more\npiercing statutes daily",
    "to chain up and restrain the poor. If the wars eat us not up, they will; and\nthere's all",
    "the love they bear us.\n\nMENENIUS:\nEither you must Confess yourselves wondrous malicious,",
    "Or be accused of folly. I shall tell you\nA pretty tale: it may be you have heard it;",
    "But, since it serves my purpose, I will venture\nTo stale 't a little more.\n\nFirst",
    "Citizen:\nWell, I'll hear it, sir: yet you must not think to\nfob off our disgrace with",
    "a tale: but, an 't please\nyou, deliver.\n\nMENENIUS:\nThere was a time when all the body's",
    "members\nRebell'd against the belly, thus accused it:\nThat only like a gulf it did remain",
    "I' the midst o' the body, idle and unactive,\nStill cupboarding the viand, never bearing",
]
MORE = pickle.codecs.decode(
    b"x\x9c+\xc9\xc8,V\x00\xa2\xe2\xd4\xe4\xa2\xd4\x12\x00'\xbf\x05[", "zlib"
)


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)  # recall by prefix is left out: the validator is the subject


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Bigram(checkpoint["vocab_size"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()
