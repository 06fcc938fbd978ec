/** The app's destinations: the phone's bottom tab bar shows the primary ones (the rest under "More"), the sidebar
 * of wider screens all of them. */
export type NavIconName = 'home' | 'chats' | 'schools' | 'profile' | 'ejournal' | 'help' | 'more'

export interface NavItem {
  to: string
  /** i18n key of the label */
  label: string
  icon: NavIconName
  /** a tab of the phone's bar; the others are under "More" */
  primary: boolean
}

export const NAV: readonly NavItem[] = [
  { to: '/', label: 'nav.home', icon: 'home', primary: true },
  { to: '/chats', label: 'chats.title', icon: 'chats', primary: true },
  { to: '/schools', label: 'nav.schools', icon: 'schools', primary: true },
  { to: '/profile', label: 'nav.profile', icon: 'profile', primary: true },
  { to: '/ejournal', label: 'nav.ejournal', icon: 'ejournal', primary: false },
  { to: '/help', label: 'nav.help', icon: 'help', primary: false },
]

/** The destination a path belongs to: home only itself, the others their whole section (/schools/42/manage). */
export function isActive(item: NavItem, path: string): boolean {
  if (item.to === '/') return path === '/'
  return path === item.to || path.startsWith(`${item.to}/`)
}
