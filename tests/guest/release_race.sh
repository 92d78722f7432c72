#!/bin/sh
# release_race: the last close of a container file racing the detach of its
# last group (the use-after-free the stress test's closerace found in stock
# 6.1's container release): dma_race's "release" race, see dma_race.c.
exec "$(dirname "$0")/dma_race" release
