"""Sentences for the synthetic speech corpus, written for this project (no text from TIMIT, the Harvard
lists or any other published corpus).

The English list is dense in the sounds that move the lips most visibly — bilabials p/b/m, labiodentals
f/v, rounded vowels (oo, oh, ow, oy) against spread ones (ee, ih, ay) — and mixes short commands,
questions, numbers and long sentences so rates and phrase lengths vary. A few German, French and Spanish
sentences give espeak-ng's other languages something to say. :func:`split_sentences` splits by sentence,
so a held-out sentence is never heard in training under any voice.
"""

from __future__ import annotations

import numpy as np

SENTENCES: tuple[str, ...] = (
    "Bob met a big brown bear.",
    "Mom baked plum pies for the bumpy boat trip.",
    "Five vivid violets wave above the fence.",
    "Peter packed his maps before the bus came.",
    "Move the blue boots over by the round pool.",
    "We see three green sheep eating cheese.",
    "Please pass the pepper and the bread, Bob.",
    "Vera found a very fine violin in the van.",
    "The small boy blew soap bubbles from the porch.",
    "Who knew the moon could look so huge?",
    "My puppy jumps up whenever the mail arrives.",
    "Maybe the plumber will phone back by five.",
    "Bring me the map, please.",
    "Big boxes block the back door.",
    "Few people ever visit the old mill by the river.",
    "Ruby wove a woolen scarf for her brother.",
    "Keep the beef and the peas in the freezer.",
    "A brave puffin paused on the pebbly beach.",
    "The movie begins at seven, but we may be late.",
    "Push the button, then wait for the beep.",
    "Mabel bought a bamboo broom at the bazaar.",
    "Oh, the roses grow slowly in the cold.",
    "Fifty fat frogs flopped off the muddy bank.",
    "Pam, bring both pumpkins to the barn.",
    "Everyone voted to move the meeting to Monday.",
    "The boat floated past the foggy bay.",
    "Bees buzz busily among the maple blossoms.",
    "Vivian plays the viola every Friday evening.",
    "Could you move your blue van, please?",
    "Mike's bike broke down by the bakery.",
    "The baby smiled, blinked, and fell asleep.",
    "Paula poured warm milk into the empty mug.",
    "Beneath the bridge, the water moved in big loops.",
    "Five brave firemen fought the blaze for hours.",
    "Put the pumpkin pie by the window to cool.",
    "Many mothers made muffins for the school fair.",
    "Bill will visit Boston in the spring.",
    "Whoever wins the prize must make a speech.",
    "The farmer fed the five pigs before dawn.",
    "Maybe it is time to paint the porch purple.",
    "We moved from a small flat to a big farmhouse.",
    "Bobby played the bass in a jazz band.",
    "My father fixed the fence with a few boards.",
    "The museum opens at nine and closes at five.",
    "Pick a number between one and fifty.",
    "Bubbling broth simmered in a huge pot.",
    "A puff of smoke rose above the mountain.",
    "Phoebe prefers plums, but Bob prefers peaches.",
    "The wolf moved through the woods without a sound.",
    "Beef, beans, and buns were served at the barbecue.",
    "Please remember to feed the fish before you leave.",
    "Vast fields of barley waved in the breeze.",
    "I'm happy to help you move the piano.",
    "Bright blue balloons floated above the parade.",
    "Both boys booed when the umpire made the call.",
    "Mary's lamb followed her up the path.",
    "Everybody brought food to the picnic by the pond.",
    "The pilot flew the plane over the foamy waves.",
    "Umbrellas bloom like flowers when it pours.",
    "Poppy mopped the muddy floor before the party.",
    "Move over, Rover, and make room for Ben.",
    "Brown bread with butter is my favorite breakfast.",
    "Vince left his favorite book on the bus.",
    "Maps, pens, and paper were piled on the table.",
    "The beaver built a dam by the big birch tree.",
    "Mom wants the vase moved a bit to the left.",
    "Ben and Bob both love blueberry muffins.",
    "The puppet show was more fun than the movie.",
    "Our phone bill was above a hundred pounds.",
    "Five purple pebbles lay beside the path.",
    "The pump in the basement broke in February.",
    "Sweep the porch, then mop the bathroom floor.",
    "The vet gave my puppy a bath and a brush.",
    "Bamboo bends but seldom breaks in a storm.",
    "We might move to the seaside by May.",
    "Put the boxes in the van before the rain.",
    "Lemon pie and plum jam make a perfect lunch.",
    "The mayor made a brief but moving speech.",
    "Grab the rope and pull the boat to the beach.",
    "Very few villagers have ever flown abroad.",
    "Polly baked a batch of blueberry biscuits.",
    "The bus moved slowly up the steep, bumpy hill.",
    "Please bring back my brown umbrella.",
    "A bumblebee bumped into the window pane.",
    "Mumble less and speak up, Bob.",
    "Food vans park by the beach in the summer.",
    "My mum phoned me from the airport at noon.",
    "Beep, beep, went the little blue car.",
    "Eve moved five boxes of books to the basement.",
    "A few ripe apples fell from the bough.",
    "Paper boats float for a bit, then sink.",
    "Combine the flour, butter, and milk in a bowl.",
    "Maybe Bobby will bring his brother to the movies.",
    "The woman wove a blanket from blue and white wool.",
    "Pour the soup, but save a bowl for Paul.",
    "Every evening, Beth feeds the pigeons in the park.",
    "The lamp on the piano flickered and went out.",
    "Bert's bicycle has a bell and a basket.",
    "My uncle moved to Vermont to farm maple trees.",
    "Avoid the mud by the boat ramp.",
    "The boy pointed at the moon and beamed.",
    "Vivid purple flames flickered in the fireplace.",
    "Bob, please bring a bowl of plums and figs.",
    "Whose boots are by the front door?",
    "Philip prefers to fly, but Maude prefers the boat.",
    "Mix the paint until the blue becomes smooth.",
    "The bread was baked before the baker woke.",
    "We bought a map, a pump, and a pair of boots.",
    "Beyond the bay, a ferry moved through the fog.",
    "Please move the bench a bit further from the fire.",
    "Mister Brown plays the bugle before breakfast.",
    "Fresh fish from the market makes a fine meal.",
    "Bubbles popped as the puppy pawed at the foam.",
    "Big brown moths fluttered around the porch lamp.",
    "The bees hummed above the blooming poppies.",
    "Whoever moved my phone, please put it back.",
    "Boil the beans, then pour off the water.",
    "May I borrow your brush for a moment?",
    "The ship's bell rang five times before noon.",
    "Babies babble before they begin to speak.",
    "A bright blue moped buzzed past the museum.",
    "My brother plays football every week.",
    "Pamela found a purse beneath the bench.",
    "Oh, what a beautiful view from the roof!",
    "Vera moved the mop, the bucket, and the broom.",
    "Please approve the plan before we begin.",
    "Blow out the candles and make a wish.",
    "The boat bobbed up and down on the waves.",
    "Fluffy pillows were piled upon the bed.",
    "Two boys played ball by the blue pool.",
    "Whip the cream, then spoon it over the berries.",
    "Beware of the big puddle by the path.",
    "I'll meet you by the fountain at five past three.",
    "Brave Bobby pulled the boat up onto the beach.",
    "Feed me more pumpkin soup, please.",
    "The view from the mountain was superb.",
    "Bob's mom paid the bill before the film.",
    "Bake the bread for forty minutes at high heat.",
    "Moving boxes filled every room of the flat.",
    "Pablo plays the flute and the oboe.",
    "Ivy grew over the brick wall by the bank.",
    "The plumber brought a pipe, a valve, and a pump.",
    "Maybe we should move the meeting to February.",
    "Pea soup, meat pie, and apple pudding, please.",
    "Bobby's bulldog barks at every passing bus.",
    "Fine rain fell from a pale, moody sky.",
    "The movers carried the piano up five flights.",
    "Vanessa bought a velvet vest and blue boots.",
    "Please be prompt; the bus leaves at eight.",
    "Moles burrow beneath the bumpy meadow.",
    "Buy a bag of apples and a box of plums.",
    "The puppy flopped down by the fire and slept.",
    "Mom mopped, Pop polished, and Bob made muffins.",
    "The phone buzzed twice, but nobody moved.",
    "We waved goodbye from the back of the boat.",
    "A bumpy ride made the baby burp.",
    "Build a bonfire by the beach before dusk.",
    "Pour me a big mug of warm cocoa.",
    "Five hundred people voted before the polls closed.",
    "The blue moon rose above the misty pines.",
    "Perhaps Paul misplaced the map in his pocket.",
    "My favorite puppet is a purple, furry monster.",
    "Beef stew bubbled on the stove all afternoon.",
    "Bob, please put the plates back on the shelf.",
    "Vic, move the boxes before the van arrives.",
    "The bird flew off with a piece of bread.",
    "Whoop, boom, bam! The fireworks lit up the sky.",
    "Maybe.",
    "Move!",
    "Please.",
    "Bob, stop.",
    "Pump it up.",
    "Five, four, three, two, one.",
    "Who moved my book?",
    "Be brief.",
    "When the bell rings at the end of the day, the pupils pack their books, put on their boots, "
    "and pour out of the building into the bright afternoon.",
    "My grandfather, who was born by the sea, believes that a boat should be painted blue, "
    "because blue boats bring back more fish.",
    "Before the big match, the players met in the bus, moved their plans about on a map, "
    "and promised to play with more passion.",
    "If you pass the bakery before five, please pick up a loaf of brown bread, a bag of buns, "
    "and maybe a few muffins for the morning.",
    "The museum's new exhibit, which opened in May, shows boats, maps and pottery from "
    "a village that vanished beneath the water.",
    "Whenever the wind blows from the bay, the smell of fish and smoke floats up the hill "
    "and over the fields of barley.",
    "Bob promised his mother that he would phone before boarding the plane, but the battery "
    "in his phone was empty.",
    "Five brown puppies tumbled out of the box, pawed at the boots by the door, "
    "and flopped down in a pile by the fire.",
    "Please remember that the pool opens at seven, the buses stop at midnight, "
    "and the museum is free on Wednesdays.",
    "Beneath a pale blue sky, the boy pulled his boat up the beach, "
    "pumped the water out, and moved it above the tide.",
)

SENTENCES_DE: tuple[str, ...] = (
    "Der Bäcker backt am Morgen frisches Brot.",
    "Mein Bruder fährt mit dem Boot über den blauen See.",
    "Bitte bring mir die Pfeffermühle und ein Messer.",
    "Viele Vögel bauen im Frühling ihre Nester.",
    "Am Montag besuchen wir die Oma im Dorf.",
    "Warum wohnt der Papagei im Baum vor dem Fenster?",
)

SENTENCES_FR: tuple[str, ...] = (
    "Le boulanger prépare du pain frais chaque matin.",
    "Mon père boit un bol de café au bord de la mer.",
    "Vous voulez partir avant la pluie ?",
    "Beaucoup de pommes sont tombées dans le bois.",
    "Le bébé rit quand sa maman fait des bulles.",
    "Nous avons vu un bateau bleu sur la rivière.",
)

SENTENCES_ES: tuple[str, ...] = (
    "Mi padre bebe un vaso de vino por la mañana.",
    "El barco blanco navega despacio por la bahía.",
    "Pablo prefiere las peras, pero Beatriz prefiere las manzanas.",
    "Vamos a comprar pan antes de que llueva.",
    "La abuela bordó una bufanda muy bonita.",
    "Por favor, pon los platos sobre la mesa.",
)

SENTENCES_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "en": SENTENCES,
    "de": SENTENCES_DE,
    "fr": SENTENCES_FR,
    "es": SENTENCES_ES,
}


def split_sentences(seed: int = 0, heldout_fraction: float = 0.1, language: str = "en") -> tuple[list[str], list[str]]:
    """Split ``language``'s sentences into ``(train, heldout)`` by sentence, deterministically per ``seed``.

    At least one sentence is held out; each sentence lands in exactly one part, and both parts keep the
    list's original order."""
    if language not in SENTENCES_BY_LANGUAGE:
        raise ValueError(f"no sentences for language {language!r}; choose one of {sorted(SENTENCES_BY_LANGUAGE)}")
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must lie strictly between 0 and 1, got {heldout_fraction!r}")
    sentences = SENTENCES_BY_LANGUAGE[language]
    n_heldout = max(1, round(len(sentences) * heldout_fraction))
    heldout_idx = set(np.random.default_rng(seed).permutation(len(sentences))[:n_heldout].tolist())
    train = [s for i, s in enumerate(sentences) if i not in heldout_idx]
    heldout = [s for i, s in enumerate(sentences) if i in heldout_idx]
    return train, heldout


def recombine(sentences: list[str], rng: np.random.Generator, min_words: int = 5, max_words: int = 12) -> str:
    """A new word sequence from the words of ``sentences``: the same pronunciations met in contexts the
    sentences never give them, so a model trained on a few hundred sentences cannot learn them by heart."""
    words = sorted({w.strip(".,;:!?¿¡«»\"'").lower() for s in sentences for w in s.split()} - {""})
    picked = [words[int(i)] for i in rng.integers(len(words), size=int(rng.integers(min_words, max_words + 1)))]
    return " ".join(picked).capitalize() + "."
