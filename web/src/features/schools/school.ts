import { computed, inject, type InjectionKey, ref, type Ref } from 'vue'

import { api, call, type Schemas } from '@/api/client'
import { callPage, LIST_PAGE } from '@/api/page'
import { useCursorList } from '@/ui/pager'

export type Organization = Schemas['OrganizationView']
export type Membership = Schemas['MembershipView']
export type SchoolClass = Schemas['ClassView']

/** The school of a page and the signed-in person's place in it (null: not a member). */
export function useSchool(organizationId: Ref<string>) {
  const organization = ref<Organization | null>(null)
  const membership = ref<Membership | null>(null)
  const loading = ref(true)
  const error = ref<unknown>(null)
  const isAdmin = computed(() => membership.value?.roles.includes('admin') ?? false)
  const isStaff = computed(() => isAdmin.value || (membership.value?.roles.includes('teacher') ?? false))

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    try {
      const id = organizationId.value
      const [org, mine] = await Promise.all([
        call(() => api.GET('/api/v1/organizations/{organization_id}', { params: { path: { organization_id: id } } })),
        call(() => api.GET('/api/v1/me/organizations')),
      ])
      organization.value = org
      membership.value = mine.find((m) => m.organization.organization_id === id)?.membership ?? null
    } catch (e) {
      error.value = e
    } finally {
      loading.value = false
    }
  }

  return { organization, membership, loading, error, isAdmin, isStaff, load }
}

export function loadClasses(organizationId: string): Promise<SchoolClass[]> {
  return call(() => api.GET('/api/v1/organizations/{organization_id}/classes', {
    params: { path: { organization_id: organizationId } },
  }))
}

/** "10 КБ", "2,5 МБ": a file's size for people. */
export function fileSize(bytes: number, locale: string): string {
  const units = locale === 'ru' ? ['Б', 'КБ', 'МБ', 'ГБ'] : ['B', 'KB', 'MB', 'GB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1
  return `${value.toLocaleString(locale, { maximumFractionDigits: digits })} ${units[unit]}`
}

export type SchoolContext = ReturnType<typeof useSchool>
/** The school of the admins' pages, provided by ManageView to its parts. */
export const SCHOOL: InjectionKey<SchoolContext> = Symbol('school')

export function injectSchool(): SchoolContext {
  const school = inject(SCHOOL)
  if (!school) throw new Error('a manage page outside ManageView')
  return school
}

// An organization's lists, each a page at a time (issue #17), more as its end scrolls into view: the school's
// page and its admins' parts read the same ones.
const page = (organizationId: string, cursor: string | null) =>
  ({ path: { organization_id: organizationId }, query: { limit: LIST_PAGE, cursor } })

/** The organization's documents (SC-10). */
export const useDocuments = (organizationId: Ref<string>) => useCursorList<Schemas['DocumentView']>(
  (cursor) => callPage(() => api.GET('/api/v1/organizations/{organization_id}/documents',
    { params: page(organizationId.value, cursor) })), { key: (doc) => doc.document_id })

/** The organization's articles (SC-11). */
export const useArticles = (organizationId: Ref<string>) => useCursorList<Schemas['ArticleView']>(
  (cursor) => callPage(() => api.GET('/api/v1/organizations/{organization_id}/articles',
    { params: page(organizationId.value, cursor) })), { key: (a) => a.article_id })

/** The organization's channels (SC-12). */
export const useChannels = (organizationId: Ref<string>) => useCursorList<Schemas['ChannelView']>(
  (cursor) => callPage(() => api.GET('/api/v1/organizations/{organization_id}/channels',
    { params: page(organizationId.value, cursor) })), { key: (c) => c.channel_id })
