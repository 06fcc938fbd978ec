import { describe, expect, it, vi } from 'vitest'
import { createApp, h, nextTick, reactive } from 'vue'

import { i18n } from '@/i18n'

import MoreItems from './MoreItems.vue'

// Issue #17: the end of a paged list asks the next page when it scrolls into view, or by its button.
class FakeObserver {
  static last: FakeObserver | null = null
  constructor(public callback: (entries: { isIntersecting: boolean }[]) => void) {
    FakeObserver.last = this
  }
  observe() {}
  disconnect() {}
  show(visible: boolean) {
    this.callback([{ isIntersecting: visible }])
  }
}

async function mounted(state: { hasMore: boolean; loading: boolean; error?: unknown }) {
  vi.stubGlobal('IntersectionObserver', FakeObserver)
  const more = vi.fn()
  const host = document.createElement('div')
  document.body.append(host)
  createApp({ render: () => h(MoreItems, { ...state, onMore: more }) }).use(i18n).mount(host)
  await nextTick()
  return { host, more }
}

describe('the end of a paged list', () => {
  it('asks the next page when the sentinel comes into view, not while a page is on its way', async () => {
    const state = reactive({ hasMore: true, loading: false })
    const { more } = await mounted(state)
    FakeObserver.last!.show(true)
    expect(more).toHaveBeenCalledTimes(1)
    state.loading = true
    await nextTick()
    FakeObserver.last!.show(true)
    expect(more).toHaveBeenCalledTimes(1)
    state.loading = false // the page came and did not fill the screen: the sentinel is still in view
    await nextTick()
    expect(more).toHaveBeenCalledTimes(2)
  })

  it('has a button that does the same, and nothing at the end of the list', async () => {
    const state = reactive({ hasMore: true, loading: false })
    const { host, more } = await mounted(state)
    host.querySelector<HTMLButtonElement>('[data-more]')!.click()
    expect(more).toHaveBeenCalledTimes(1)
    state.hasMore = false
    await nextTick()
    expect(host.querySelector('[data-more]')).toBeNull()
    expect(host.querySelector('[data-more-sentinel]')).toBeNull()
  })
})
