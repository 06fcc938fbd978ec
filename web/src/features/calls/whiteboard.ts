/**
 * The call's whiteboard as this client holds it (CA-3, beta), framework-free: the strokes at a revision, the
 * changes applied in order (the API's answers and the realtime socket's WhiteboardChanged alike, each once), a
 * skipped revision reported so that the board is read again, and the drawing of it on a canvas. A board is
 * 1600×900 units whatever the canvas's size; a stroke is a flat list x0, y0, x1, y1, … of whole units.
 */
import type { Schemas } from '@/api/client'

export type Stroke = Schemas['StrokeView']
export type BoardView = Schemas['WhiteboardView']
export interface BoardChange {
  call_id: string
  action: string
  revision: number
  by: string
  stroke?: Stroke | Record<string, never> | null
  stroke_id?: string | null
}

export const BOARD = { width: 1600, height: 900 }
export const COLORS = ['#1f2937', '#dc2626', '#2563eb', '#15803d', '#c2410c'] as const
export type Color = (typeof COLORS)[number]
/** The API's most points in one stroke: a longer line goes as several strokes, each starting where one ended. */
export const STROKE_MAX_POINTS = 1000

export type Applied = 'applied' | 'stale' | 'gap'

export class Board {
  revision = 0
  strokes: Stroke[] = []

  /** The board as the API read it. */
  load(view: Pick<BoardView, 'revision' | 'strokes'>): void {
    this.revision = view.revision
    this.strokes = view.strokes.map((s) => ({ ...s, points: [...s.points] }))
  }

  /** A change: applied when it is the next one; 'stale' when already in; 'gap' when one before it is missing. */
  apply(change: BoardChange): Applied {
    if (change.revision <= this.revision) return 'stale'
    if (change.revision > this.revision + 1) return 'gap'
    if (change.action === 'drawn' && change.stroke && 'points' in change.stroke) {
      const stroke = change.stroke as Stroke
      if (!this.strokes.some((s) => s.stroke_id === stroke.stroke_id)) this.strokes.push(stroke)
    } else if (change.action === 'erased') {
      this.strokes = this.strokes.filter((s) => s.stroke_id !== change.stroke_id)
    } else if (change.action === 'cleared') {
      this.strokes = []
    }
    this.revision = change.revision
    return 'applied'
  }

  /** The newest stroke under a point (board units) that ``mayErase`` allows, for the eraser. */
  strokeAt(x: number, y: number, mayErase: (s: Stroke) => boolean, slack = 10): Stroke | null {
    for (let i = this.strokes.length - 1; i >= 0; i--) {
      const s = this.strokes[i]!
      if (mayErase(s) && distanceTo(s.points, x, y) <= s.width / 2 + slack) return s
    }
    return null
  }
}

/** The shortest distance from a point to a polyline (flat x, y list). */
export function distanceTo(points: number[], x: number, y: number): number {
  let best = Infinity
  for (let i = 0; i + 1 < points.length; i += 2) {
    const ax = points[i]!, ay = points[i + 1]!
    const bx = points[i + 2] ?? ax, by = points[i + 3] ?? ay
    const dx = bx - ax, dy = by - ay
    const t = dx || dy ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy))) : 0
    best = Math.min(best, Math.hypot(x - (ax + t * dx), y - (ay + t * dy)))
  }
  return best
}

/** A pointer's place on the canvas in board units (whole, inside the board). */
export function toBoard(clientX: number, clientY: number, rect: { left: number; top: number; width: number; height: number }): [number, number] {
  const x = Math.round(((clientX - rect.left) / rect.width) * BOARD.width)
  const y = Math.round(((clientY - rect.top) / rect.height) * BOARD.height)
  return [Math.max(0, Math.min(BOARD.width, x)), Math.max(0, Math.min(BOARD.height, y))]
}

/** Draw strokes on a 2D context whose size is ``width`` × ``height`` pixels (white background first). */
export function paint(ctx: CanvasRenderingContext2D, width: number, height: number, strokes: Pick<Stroke, 'color' | 'width' | 'points'>[]): void {
  ctx.setTransform(1, 0, 0, 1, 0, 0)
  ctx.fillStyle = '#ffffff'
  ctx.fillRect(0, 0, width, height)
  const scale = width / BOARD.width
  ctx.setTransform(scale, 0, 0, height / BOARD.height, 0, 0)
  ctx.lineCap = 'round'
  ctx.lineJoin = 'round'
  for (const s of strokes) {
    const p = s.points
    if (p.length < 2) continue
    ctx.strokeStyle = s.color
    ctx.lineWidth = s.width
    ctx.beginPath()
    ctx.moveTo(p[0]!, p[1]!)
    if (p.length === 2) ctx.lineTo(p[0]! + 0.01, p[1]!) // a dot
    for (let i = 2; i + 1 < p.length; i += 2) ctx.lineTo(p[i]!, p[i + 1]!)
    ctx.stroke()
  }
}
