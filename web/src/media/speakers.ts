/**
 * Who is speaking now, from the audio levels of the voices received (0..1, as WebRTC reports them:
 * RTCRtpSynchronizationSource.audioLevel or inbound-rtp audioLevel). Framework-free and clock-free
 * (the caller passes `now`), so it is unit-tested with made-up levels.
 *
 * Levels are smoothed (a beep or a cough does not move the highlight), the loudest voice above the
 * threshold takes the highlight only when clearly louder than the one holding it, and a speaker who
 * goes quiet keeps it for `holdMs` (pauses between words) before nobody is highlighted.
 */

export interface SpeakerOptions {
  /** smoothed level under which a voice counts as silent */
  threshold?: number
  /** how long a speaker keeps the highlight after going quiet, ms */
  holdMs?: number
  /** weight of the newest level in the smoothed one (0..1] */
  smoothing?: number
  /** how much louder than the current speaker a voice must be to take over */
  switchRatio?: number
  /** how long it must stay so, ms */
  switchMs?: number
}

export class ActiveSpeaker {
  current: string | null = null
  private readonly smoothed = new Map<string, number>()
  private lastHeard = 0
  private readonly threshold: number
  private readonly holdMs: number
  private readonly smoothing: number
  private readonly switchRatio: number
  private readonly switchMs: number
  private challenger: string | null = null
  private challengerSince = 0

  constructor(options: SpeakerOptions = {}) {
    this.threshold = options.threshold ?? 0.02
    this.holdMs = options.holdMs ?? 1500
    this.smoothing = options.smoothing ?? 0.5
    this.switchRatio = options.switchRatio ?? 1.5
    this.switchMs = options.switchMs ?? 300
  }

  /** Take one sample of every voice (a voice absent from `levels` is silent); answers who speaks now. */
  update(levels: Record<string, number>, now: number): string | null {
    for (const id of new Set([...this.smoothed.keys(), ...Object.keys(levels)])) {
      const level = Math.max(0, Math.min(1, levels[id] ?? 0))
      const value = this.smoothing * level + (1 - this.smoothing) * (this.smoothed.get(id) ?? 0)
      if (value < 1e-4 && !(id in levels)) this.smoothed.delete(id)
      else this.smoothed.set(id, value)
    }
    let loudest: string | null = null
    let loudestLevel = this.threshold
    for (const [id, value] of this.smoothed) {
      if (value >= loudestLevel) {
        loudest = id
        loudestLevel = value
      }
    }
    const currentLevel = this.current ? this.smoothed.get(this.current) ?? 0 : 0
    if (this.current && currentLevel >= this.threshold) this.lastHeard = now
    const takesOver = loudest !== null && loudest !== this.current &&
      (currentLevel < this.threshold || loudestLevel >= currentLevel * this.switchRatio)
    if (!takesOver) this.challenger = null
    else if (this.challenger !== loudest) {
      this.challenger = loudest
      this.challengerSince = now
    }
    if (takesOver && (!this.current || now - this.challengerSince >= this.switchMs)) {
      this.current = loudest
      this.lastHeard = now
      this.challenger = null
    } else if (this.current && currentLevel < this.threshold && now - this.lastHeard > this.holdMs) {
      this.current = null
    }
    return this.current
  }

  /** Forget a voice (its person left). */
  forget(id: string): void {
    this.smoothed.delete(id)
    if (this.current === id) this.current = null
  }
}

/** The level of each person from the levels of the audio slots (mid -> level) and who each slot carries. */
export function levelsByUser(byMid: Record<string, number>, slots: Record<string, { user_id: string } | null>):
  Record<string, number> {
  const out: Record<string, number> = {}
  for (const [mid, level] of Object.entries(byMid)) {
    const userId = slots[mid]?.user_id
    if (userId) out[userId] = Math.max(out[userId] ?? 0, level)
  }
  return out
}
