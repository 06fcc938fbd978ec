import { describe, expect, it } from 'vitest'

import { Board, distanceTo, toBoard, type BoardChange, type Stroke } from './whiteboard'

const stroke = (id: string, user = 'u1', points = [0, 0, 100, 0]): Stroke =>
  ({ stroke_id: id, user_id: user, color: '#dc2626', width: 8, points })
const drawn = (revision: number, s: Stroke): BoardChange => ({ call_id: 'k', action: 'drawn', revision, by: s.user_id, stroke: s })

describe('the whiteboard held by the client (CA-3)', () => {
  it('applies each change once, in order, whether the answer or the push comes first', () => {
    const board = new Board()
    board.load({ revision: 1, strokes: [stroke('a')] })
    expect(board.apply(drawn(2, stroke('b')))).toBe('applied')
    expect(board.apply(drawn(2, stroke('b')))).toBe('stale') // the push after the POST's answer
    expect(board.apply({ call_id: 'k', action: 'erased', revision: 3, by: 'u1', stroke_id: 'a' })).toBe('applied')
    expect(board.strokes.map((s) => s.stroke_id)).toEqual(['b'])
    expect(board.apply({ call_id: 'k', action: 'cleared', revision: 4, by: 'admin' })).toBe('applied')
    expect(board.strokes).toEqual([])
    expect(board.revision).toBe(4)
  })

  it('reports a skipped revision (the board is read again) and applies nothing of it', () => {
    const board = new Board()
    expect(board.apply(drawn(2, stroke('late')))).toBe('gap')
    expect(board.strokes).toEqual([])
    board.load({ revision: 2, strokes: [stroke('x'), stroke('late')] })
    expect(board.apply(drawn(3, stroke('next')))).toBe('applied')
    expect(board.strokes.length).toBe(3)
  })

  it('finds the newest stroke under the eraser among those one may erase', () => {
    const board = new Board()
    board.load({ revision: 2, strokes: [stroke('mine', 'me'), stroke('theirs', 'them')] })
    expect(board.strokeAt(50, 3, () => true)?.stroke_id).toBe('theirs')
    expect(board.strokeAt(50, 3, (s) => s.user_id === 'me')?.stroke_id).toBe('mine')
    expect(board.strokeAt(50, 300, () => true)).toBeNull()
    expect(distanceTo([0, 0, 100, 0], 50, 30)).toBe(30)
    expect(distanceTo([10, 10], 13, 14)).toBe(5) // a dot
  })

  it('maps a pointer on a canvas of any size to whole board units inside the board', () => {
    const rect = { left: 10, top: 20, width: 320, height: 180 }
    expect(toBoard(10, 20, rect)).toEqual([0, 0])
    expect(toBoard(170, 110, rect)).toEqual([800, 450])
    expect(toBoard(900, -5, rect)).toEqual([1600, 0])
  })
})
