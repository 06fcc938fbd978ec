import { describe, expect, it } from 'vitest'

import { ActiveSpeaker, levelsByUser } from './speakers'
import { levelsFromStats } from './call'

/** Feed the same levels every 100 ms for `ms`; answers the last verdict. */
function feed(speaker: ActiveSpeaker, levels: Record<string, number>, from: number, ms: number): string | null {
  let who: string | null = null
  for (let t = from; t < from + ms; t += 100) who = speaker.update(levels, t)
  return who
}

describe('ActiveSpeaker', () => {
  it('highlights the one voice that speaks, nobody while all are quiet', () => {
    const s = new ActiveSpeaker()
    expect(feed(s, { anna: 0.001, oleg: 0.005 }, 0, 1000)).toBeNull() // room noise is nobody
    expect(feed(s, { anna: 0.3, oleg: 0.005 }, 1000, 500)).toBe('anna')
  })

  it('a short blip of another voice does not move the highlight', () => {
    const s = new ActiveSpeaker()
    feed(s, { anna: 0.2 }, 0, 1000)
    expect(s.update({ anna: 0.2, oleg: 0.9 }, 1000)).toBe('anna') // one loud sample (a cough)
    expect(feed(s, { anna: 0.2, oleg: 0.01 }, 1100, 500)).toBe('anna')
  })

  it('a voice clearly louder for a while takes over; about as loud does not', () => {
    const s = new ActiveSpeaker()
    feed(s, { anna: 0.3 }, 0, 1000)
    expect(feed(s, { anna: 0.3, oleg: 0.35 }, 1000, 1000)).toBe('anna') // not 1.5 times louder
    expect(feed(s, { anna: 0.1, oleg: 0.6 }, 2000, 1000)).toBe('oleg')
  })

  it('keeps a quiet speaker through a pause, then lets go', () => {
    const s = new ActiveSpeaker({ holdMs: 1500 })
    feed(s, { anna: 0.4 }, 0, 1000)
    expect(feed(s, { anna: 0 }, 1000, 1000)).toBe('anna') // a pause between words
    expect(feed(s, { anna: 0 }, 2000, 2000)).toBeNull()
  })

  it('a quiet speaker gives way to anyone speaking; a person who left is forgotten', () => {
    const s = new ActiveSpeaker()
    feed(s, { anna: 0.5 }, 0, 1000)
    expect(feed(s, { anna: 0, oleg: 0.05 }, 1000, 1500)).toBe('oleg')
    s.forget('oleg')
    expect(s.current).toBeNull()
    expect(s.update({}, 3000)).toBeNull()
  })
})

describe('levels', () => {
  it('maps the audio slots to the people they carry (the loudest slot of a person wins)', () => {
    const slots = { '5': { user_id: 'anna' }, '6': { user_id: 'oleg' }, '7': null }
    expect(levelsByUser({ '5': 0.2, '6': 0.1, '7': 0.9 }, slots)).toEqual({ anna: 0.2, oleg: 0.1 })
  })

  it('reads inbound audio levels by mid from a stats report, ignoring video and outbound', () => {
    const report = new Map<string, Record<string, unknown>>([
      ['a', { type: 'inbound-rtp', kind: 'audio', mid: '5', audioLevel: 0.25 }],
      ['b', { type: 'inbound-rtp', kind: 'video', mid: '3' }],
      ['c', { type: 'outbound-rtp', kind: 'audio', mid: '0', audioLevel: 0.9 }],
      ['d', { type: 'inbound-rtp', kind: 'audio', mid: '6' }],
    ])
    expect(levelsFromStats(report)).toEqual({ '5': 0.25, '6': 0 })
  })
})
